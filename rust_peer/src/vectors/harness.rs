//! The test bench for the scenarios: foca instances whose runtime records
//! every output, and the recorder that checks and stores each vector.

use std::collections::HashSet;
use std::num::{NonZeroU8, NonZeroUsize};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context as _;
use foca::{
    Codec as _, Config, Foca, Header, Member, Message, Notification, OwnedNotification, Runtime,
    Timer,
};
use prost::Message as _;
use rand::rngs::StdRng;
use rand::SeedableRng as _;
use serde_json::{json, Value};

use crate::broadcast::{AcceptedBroadcast, KeyedBroadcastHandler};
use crate::codec::pb::KeyedBroadcast;
use crate::codec::{message_type_name, ProtoCodec};
use crate::control::to_hex;
use crate::datagram::{self, Datagram};
use crate::datagram_json::{datagram_to_json, header_to_json};
use crate::identity::NodeIdentity;

pub(super) type VectorFoca = Foca<NodeIdentity, ProtoCodec, StdRng, KeyedBroadcastHandler>;

/// One datagram that foca handed to the runtime.
#[derive(Debug, Clone)]
pub(super) struct Sent {
    pub(super) dst: NodeIdentity,
    pub(super) data: Vec<u8>,
    /// The header of foca's `DataSent` notification, which foca emits right
    /// after `send_to`.
    pub(super) header: Option<Header<NodeIdentity>>,
}

/// A runtime that records everything foca outputs.
#[derive(Default)]
pub(super) struct Capture {
    pub(super) sent: Vec<Sent>,
    pub(super) timers: Vec<Timer<NodeIdentity>>,
    pub(super) notifications: Vec<OwnedNotification<NodeIdentity>>,
}

impl Runtime<NodeIdentity> for Capture {
    fn notify(&mut self, notification: Notification<'_, NodeIdentity>) {
        match notification {
            Notification::DataSent(header) => {
                let last = self
                    .sent
                    .last_mut()
                    .expect("foca notifies DataSent only after send_to");
                assert!(last.header.is_none(), "one DataSent per datagram");
                last.header = Some(header.clone());
            }
            other => self.notifications.push(other.to_owned()),
        }
    }

    fn send_to(&mut self, to: NodeIdentity, data: &[u8]) {
        self.sent.push(Sent {
            dst: to,
            data: data.to_vec(),
            header: None,
        });
    }

    fn submit_after(&mut self, event: Timer<NodeIdentity>, _after: Duration) {
        self.timers.push(event);
    }
}

/// A foca instance and what it has output so far.
pub(super) struct Node {
    pub(super) foca: VectorFoca,
    pub(super) runtime: Capture,
    pub(super) max_packet_size: usize,
    // Kept so that the handler's sends succeed, although no vector needs them.
    _accepted: mpsc::Receiver<AcceptedBroadcast>,
}

impl Node {
    pub(super) fn new(identity: NodeIdentity, config: Config, seed: u64) -> Self {
        let (accepted_tx, accepted) = mpsc::channel();
        let max_packet_size = config.max_packet_size.get();
        let foca = Foca::with_custom_broadcast(
            identity,
            config,
            StdRng::seed_from_u64(seed),
            ProtoCodec,
            KeyedBroadcastHandler::new(accepted_tx),
        );
        Self {
            foca,
            runtime: Capture::default(),
            max_packet_size,
            _accepted: accepted,
        }
    }

    pub(super) fn identity(&self) -> NodeIdentity {
        self.foca.identity().clone()
    }

    /// Applies `members` with `Foca::apply_many`, which also queues them for
    /// dissemination as it does for received updates.
    pub(super) fn learn(&mut self, members: Vec<Member<NodeIdentity>>) -> anyhow::Result<()> {
        self.foca
            .apply_many(members.into_iter(), true, &mut self.runtime)
            .context("apply_many failed")
    }

    pub(super) fn receive(&mut self, data: &[u8]) -> anyhow::Result<()> {
        self.foca
            .handle_data(data, &mut self.runtime)
            .with_context(|| format!("{} failed to handle a datagram", self.identity()))
    }

    /// Delivers every datagram `from` sent to this node, in order.
    pub(super) fn receive_from(&mut self, from: &mut Node) -> anyhow::Result<()> {
        let me = self.identity();
        let (mine, others): (Vec<Sent>, Vec<Sent>) =
            from.runtime.sent.drain(..).partition(|sent| sent.dst == me);
        from.runtime.sent = others;
        for sent in mine {
            self.receive(&sent.data)?;
        }
        Ok(())
    }

    /// Fires the oldest pending timer that `matches` accepts.
    pub(super) fn fire(
        &mut self,
        matches: impl Fn(&Timer<NodeIdentity>) -> bool,
    ) -> anyhow::Result<()> {
        let position = self
            .runtime
            .timers
            .iter()
            .position(matches)
            .context("no pending timer matches")?;
        let timer = self.runtime.timers.remove(position);
        self.foca
            .handle_timer(timer.clone(), &mut self.runtime)
            .with_context(|| format!("handle_timer({timer:?}) failed"))
    }

    pub(super) fn add_broadcast(
        &mut self,
        key: &str,
        version: u64,
        data: &[u8],
    ) -> anyhow::Result<()> {
        let item = keyed_item(key, version, data);
        let added = self
            .foca
            .add_broadcast(&item)
            .context("add_broadcast failed")?;
        anyhow::ensure!(added, "add_broadcast did not take {key} version {version}");
        Ok(())
    }

    /// Removes and returns the only datagram sent since the last take.
    pub(super) fn take_one(&mut self) -> anyhow::Result<Sent> {
        let mut sent = std::mem::take(&mut self.runtime.sent);
        anyhow::ensure!(
            sent.len() == 1,
            "expected one datagram, foca sent {}",
            sent.len()
        );
        Ok(sent.remove(0))
    }

    /// Removes and returns the first datagram sent to `dst`.
    pub(super) fn take_to(&mut self, dst: &NodeIdentity) -> anyhow::Result<Sent> {
        let position = self
            .runtime
            .sent
            .iter()
            .position(|sent| sent.dst == *dst)
            .with_context(|| format!("nothing was sent to {dst}"))?;
        Ok(self.runtime.sent.remove(position))
    }

    pub(super) fn clear_sent(&mut self) {
        self.runtime.sent.clear();
    }
}

pub(super) fn keyed_item(key: &str, version: u64, data: &[u8]) -> Vec<u8> {
    KeyedBroadcast {
        key: key.to_owned(),
        version,
        data: data.to_vec(),
    }
    .encode_to_vec()
}

pub(super) fn identity(id: &str, addr: &str, renewal: u64) -> NodeIdentity {
    NodeIdentity::new(
        id.as_bytes().to_vec(),
        addr.parse().expect("vector addresses are valid"),
        renewal,
    )
}

pub(super) fn config(max_packet_size: usize) -> Config {
    let mut config = Config::simple();
    config.max_packet_size = NonZeroUsize::new(max_packet_size).expect("size is positive");
    config
}

pub(super) fn with_max_transmissions(mut config: Config, max_transmissions: u8) -> Config {
    config.max_transmissions = NonZeroU8::new(max_transmissions).expect("count is positive");
    config
}

pub(super) fn is_probe(timer: &Timer<NodeIdentity>) -> bool {
    matches!(timer, Timer::ProbeRandomMember(_))
}

pub(super) fn is_indirect_probe(timer: &Timer<NodeIdentity>) -> bool {
    matches!(timer, Timer::SendIndirectProbe { .. })
}

/// Builds a datagram from `src` as a foca sender would frame it, for the
/// inputs that no foca instance in a scenario sends by itself.
pub(super) fn crafted(
    src: &NodeIdentity,
    src_incarnation: u16,
    dst: &NodeIdentity,
    message: Message<NodeIdentity>,
    updates: Option<Vec<Member<NodeIdentity>>>,
) -> Vec<u8> {
    datagram::encode(&Datagram {
        header: Header {
            src: src.clone(),
            src_incarnation,
            dst: dst.clone(),
            message,
        },
        updates,
        broadcasts: Vec::new(),
    })
    .expect("crafted datagrams have a valid layout")
}

pub(super) fn header_len(header: &Header<NodeIdentity>) -> usize {
    let mut buf = Vec::new();
    ProtoCodec
        .encode_header(header, &mut buf)
        .expect("header encodes into an unbounded Vec");
    buf.len()
}

/// The message type and section sizes a recorded datagram must have.
/// [`Recorder::record`] checks them, so that each description stays true.
pub(super) struct Expect {
    message: &'static str,
    /// The number of updates, or `None` for a datagram without COUNT.
    updates: Option<usize>,
    broadcasts: usize,
}

impl Expect {
    pub(super) fn new(message: &'static str, updates: Option<usize>, broadcasts: usize) -> Self {
        Self {
            message,
            updates,
            broadcasts,
        }
    }
}

/// The vectors collected so far.
#[derive(Default)]
pub(super) struct Recorder {
    pub(super) vectors: Vec<Value>,
    names: HashSet<String>,
}

impl Recorder {
    /// Checks `sent` against foca's header and `expect`, then stores it.
    pub(super) fn record(
        &mut self,
        name: &str,
        description: &str,
        sender: &Node,
        sent: &Sent,
        expect: &Expect,
    ) -> anyhow::Result<Datagram> {
        let context = || format!("vector {name}");
        anyhow::ensure!(
            self.names.insert(name.to_owned()),
            "duplicate vector {name}"
        );
        let header = sent
            .header
            .as_ref()
            .with_context(|| format!("{}: foca sent no DataSent notification", context()))?;
        anyhow::ensure!(
            header.dst == sent.dst,
            "{}: header dst differs from send_to",
            context()
        );
        anyhow::ensure!(
            sent.data.len() <= sender.max_packet_size,
            "{}: {} bytes exceed max_packet_size {}",
            context(),
            sent.data.len(),
            sender.max_packet_size
        );

        let decoded =
            datagram::decode(&sent.data, Some(sender.max_packet_size)).map_err(|err| {
                anyhow::anyhow!("{}: foca's datagram does not decode: {err}", context())
            })?;
        anyhow::ensure!(
            decoded.header == *header,
            "{}: decoded header differs from foca's",
            context()
        );
        let reencoded = datagram::encode(&decoded)
            .map_err(|err| anyhow::anyhow!("{}: does not re-encode: {err}", context()))?;
        anyhow::ensure!(reencoded == sent.data, "{}: re-encoding differs", context());

        let actual = Expect::new(
            message_type_name(&header.message),
            decoded.updates.as_ref().map(Vec::len),
            decoded.broadcasts.len(),
        );
        anyhow::ensure!(
            actual.message == expect.message
                && actual.updates == expect.updates
                && actual.broadcasts == expect.broadcasts,
            "{}: expected {} with updates {:?} and {} broadcasts, foca sent {} with updates {:?} \
             and {} broadcasts",
            context(),
            expect.message,
            expect.updates,
            expect.broadcasts,
            actual.message,
            actual.updates,
            actual.broadcasts
        );

        let mut datagram_json = datagram_to_json(&decoded);
        // The header written is foca's own, which the check above found
        // equal to the decoded one.
        datagram_json["header"] = header_to_json(header);
        self.vectors.push(json!({
            "name": name,
            "description": description,
            "max_packet_size": sender.max_packet_size,
            "len": sent.data.len(),
            "hex": to_hex(&sent.data),
            "datagram": datagram_json,
        }));
        Ok(decoded)
    }
}
