//! The event loop. One task owns `Foca` and handles one input at a time: a
//! datagram, a due timer, a control command or a re-announce. After each
//! call into foca it drains the output in a fixed order: datagrams to send,
//! timers to schedule, notifications, then the broadcast items the handler
//! accepted.

use std::io;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context as _;
use foca::{AccumulatingRuntime, Config, Foca, Incarnation, OwnedNotification, State};
use prost::Message as _;
use rand::rngs::StdRng;
use rand::SeedableRng as _;
use serde_json::{json, Map, Value};
use tokio::net::UdpSocket;
use tokio::signal::unix::{signal, SignalKind};
use tokio::time::Instant;
use tracing::{debug, info, trace, warn};

use crate::broadcast::{AcceptedBroadcast, KeyedBroadcastHandler};
use crate::codec::pb::KeyedBroadcast;
use crate::codec::ProtoCodec;
use crate::control::{self, Command, ControlChannel, ControlMode, Event, IdentityJson, ReadyLine};
use crate::identity::NodeIdentity;
use crate::stats::{ErrorClass, Stats};
use crate::timers::TimerQueue;

/// Receive buffer size. It is larger than any accepted `max_packet_size`, so
/// an oversized datagram reaches foca whole and foca rejects it as
/// `DataTooBig` instead of the OS truncating it.
const RECV_BUFFER_SIZE: usize = 65_536;

/// The first re-announce to the seeds follows the initial one by this much,
/// and each later one waits twice as long as the previous, up to
/// [`REANNOUNCE_MAX`].
const REANNOUNCE_INITIAL: Duration = Duration::from_millis(500);
const REANNOUNCE_MAX: Duration = Duration::from_secs(5);

type PeerFoca = Foca<NodeIdentity, ProtoCodec, StdRng, KeyedBroadcastHandler>;

/// Everything the node needs from the command line, already validated.
#[derive(Debug)]
pub struct Settings {
    pub bind: SocketAddr,
    pub advertise: Option<SocketAddr>,
    pub id: Vec<u8>,
    pub renewal: u64,
    pub config: Config,
    pub seeds: Vec<SocketAddr>,
    /// The control connection's direction, or standalone mode.
    pub control: ControlMode,
    pub rng_seed: Option<u64>,
}

/// Runs the node until `stop`, the end of the control connection, SIGTERM or
/// SIGINT; a standalone node stops only on a signal. Returns an error only
/// when start-up fails.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let mut driver = Driver::start(settings).await?;
    let mut terminate =
        signal(SignalKind::terminate()).context("failed to install the SIGTERM handler")?;
    let mut interrupt =
        signal(SignalKind::interrupt()).context("failed to install the SIGINT handler")?;

    let outcome = tokio::select! {
        outcome = driver.run_loop() => outcome,
        _ = terminate.recv() => Ok(StopReason::Signal("SIGTERM")),
        _ = interrupt.recv() => Ok(StopReason::Signal("SIGINT")),
    };
    match outcome {
        Ok(reason) => info!(reason = %reason, "stopping"),
        // The contract treats a lost control connection like a closed one.
        Err(err) => info!(error = %err, "stopping: control connection failed"),
    }
    Ok(())
}

enum StopReason {
    Command,
    ControlClosed,
    Signal(&'static str),
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Command => formatter.write_str("stop command"),
            Self::ControlClosed => formatter.write_str("control connection closed"),
            Self::Signal(name) => formatter.write_str(name),
        }
    }
}

/// foca's connection state, which foca does not expose. The driver follows
/// it from notifications and from its own identity changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Connection {
    Disconnected,
    Connected,
    Undead,
}

impl Connection {
    fn name(self) -> &'static str {
        match self {
            Self::Disconnected => "disconnected",
            Self::Connected => "connected",
            Self::Undead => "undead",
        }
    }
}

/// Announces to the seeds on a doubling cadence while the node is
/// disconnected.
struct Bootstrap {
    seeds: Vec<SocketAddr>,
    next_at: Option<Instant>,
    delay: Duration,
}

impl Bootstrap {
    /// Starts the cadence over from [`REANNOUNCE_INITIAL`].
    fn restart(&mut self, now: Instant) {
        if self.seeds.is_empty() {
            return;
        }
        self.delay = REANNOUNCE_INITIAL;
        self.next_at = Some(now + self.delay);
    }

    fn stop(&mut self) {
        self.next_at = None;
    }

    fn schedule_next(&mut self, now: Instant) {
        self.delay = (self.delay * 2).min(REANNOUNCE_MAX);
        self.next_at = Some(now + self.delay);
    }
}

struct Driver {
    foca: PeerFoca,
    runtime: AccumulatingRuntime<NodeIdentity>,
    socket: UdpSocket,
    control: ControlChannel,
    timers: TimerQueue<NodeIdentity>,
    accepted_broadcasts: mpsc::Receiver<AcceptedBroadcast>,
    stats: Stats,
    connection: Connection,
    /// The incarnation in our most recent outgoing header, since foca does
    /// not expose its own. foca raises it only to refute a suspicion, and
    /// gossips right after, and resets it to 0 on an identity change.
    incarnation: Incarnation,
    bootstrap: Bootstrap,
}

impl Driver {
    /// Binds the socket, opens the control connection, sends the ready line
    /// and announces to the seeds.
    async fn start(settings: Settings) -> anyhow::Result<Self> {
        let socket = UdpSocket::bind(settings.bind)
            .await
            .with_context(|| format!("failed to bind UDP socket to {}", settings.bind))?;
        let bound = socket
            .local_addr()
            .context("failed to read the bound UDP address")?;
        let advertise = wire_address(settings.advertise.unwrap_or(bound));
        if advertise.ip().is_unspecified() {
            warn!(%advertise, "advertised address is unspecified; pass --advertise so peers can reach this node");
        }
        let identity = NodeIdentity::new(settings.id, advertise, settings.renewal);

        let mut control = ControlChannel::open(settings.control).await?;

        let rng = match settings.rng_seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        let (accepted_tx, accepted_broadcasts) = mpsc::channel();
        let config_json = crate::config::to_json(&settings.config);
        let foca = Foca::with_custom_broadcast(
            identity.clone(),
            settings.config,
            rng,
            ProtoCodec,
            KeyedBroadcastHandler::new(accepted_tx),
        );

        let ready = ReadyLine {
            line_type: "ready",
            ts: control::unix_ts(),
            contract: control::CONTRACT_VERSION,
            implementation: "rust_peer",
            version: crate::VERSION.to_owned(),
            identity: IdentityJson::from(&identity),
            bind: bound.to_string(),
            pid: std::process::id(),
            config: config_json,
        };
        control
            .write_ready(&ready)
            .await
            .context("failed to send the ready line")?;
        control
            .flush()
            .await
            .context("failed to send the ready line")?;
        info!(%identity, %bound, "node ready");

        let mut seeds = settings.seeds;
        seeds.retain(|seed| {
            let is_self = *seed == advertise;
            if is_self {
                info!(%seed, "skipping seed: it is this node's own address");
            }
            !is_self
        });

        let mut driver = Self {
            foca,
            runtime: AccumulatingRuntime::new(),
            socket,
            control,
            timers: TimerQueue::new(),
            accepted_broadcasts,
            stats: Stats::default(),
            connection: Connection::Disconnected,
            incarnation: 0,
            bootstrap: Bootstrap {
                seeds,
                next_at: None,
                delay: REANNOUNCE_INITIAL,
            },
        };
        driver
            .announce_to_seeds()
            .await
            .context("failed to write to the control connection")?;
        driver.bootstrap.restart(Instant::now());
        Ok(driver)
    }

    /// Handles inputs until a stop. An `Err` means the control connection
    /// failed.
    async fn run_loop(&mut self) -> io::Result<StopReason> {
        let mut recv_buf = vec![0u8; RECV_BUFFER_SIZE];
        loop {
            let wake_at = earliest(self.timers.next_deadline(), self.bootstrap.next_at);
            tokio::select! {
                received = self.socket.recv_from(&mut recv_buf) => match received {
                    Ok((len, from)) => self.handle_datagram(&recv_buf[..len], from).await?,
                    Err(err) => warn!(error = %err, "failed to receive a UDP datagram"),
                },
                line = self.control.next_line() => match line? {
                    Some(line) => {
                        if let Some(reason) = self.handle_command_line(&line).await? {
                            return Ok(reason);
                        }
                    }
                    None => return Ok(StopReason::ControlClosed),
                },
                () = sleep_until(wake_at) => self.handle_due(Instant::now()).await?,
            }
        }
    }

    async fn handle_datagram(&mut self, data: &[u8], from: SocketAddr) -> io::Result<()> {
        trace!(len = data.len(), %from, "datagram received");
        let result = self.foca.handle_data(data, &mut self.runtime);
        self.count_error(result, "handle_data");
        self.drain().await
    }

    /// Fires every timer due at `now`, then the re-announce if it is due.
    async fn handle_due(&mut self, now: Instant) -> io::Result<()> {
        while let Some(timer) = self.timers.pop_due(now) {
            trace!(?timer, "timer fired");
            let result = self.foca.handle_timer(timer, &mut self.runtime);
            self.count_error(result, "handle_timer");
            self.drain().await?;
        }

        if self.bootstrap.next_at.is_some_and(|at| at <= now) {
            if self.connection == Connection::Disconnected {
                self.announce_to_seeds().await?;
                self.bootstrap.schedule_next(now);
            } else {
                self.bootstrap.stop();
            }
        }
        Ok(())
    }

    async fn announce_to_seeds(&mut self) -> io::Result<()> {
        for index in 0..self.bootstrap.seeds.len() {
            let seed = self.bootstrap.seeds[index];
            debug!(%seed, "announcing to seed");
            let target = NodeIdentity::announce_target(seed);
            let result = self.foca.announce(target, &mut self.runtime);
            self.count_error(result, "announce to seed");
            self.drain().await?;
        }
        Ok(())
    }

    /// Logs and counts a foca error. foca is built to carry on after any of
    /// them, so none stops the node.
    fn count_error(&mut self, result: Result<(), foca::Error>, call: &'static str) {
        if let Err(err) = result {
            let class = ErrorClass::of(&err);
            self.stats.record_error(class);
            warn!(error = %err, class = class.name(), call, "foca returned an error");
        }
    }

    /// Sends, schedules and reports everything foca queued during the last
    /// call. Only a failed write to the control connection is an error.
    async fn drain(&mut self) -> io::Result<()> {
        while let Some((dst, data)) = self.runtime.to_send() {
            if let Err(err) = self.socket.send_to(&data, dst.addr).await {
                warn!(error = %err, dst = %dst.addr, len = data.len(), "failed to send a UDP datagram");
            }
        }

        let now = Instant::now();
        while let Some((delay, timer)) = self.runtime.to_schedule() {
            self.timers.push(now, delay, timer);
        }

        while let Some(notification) = self.runtime.to_notify() {
            if let Some(event) = self.observe(notification, now) {
                self.control.write_event(&event).await?;
            }
        }

        // NOTE: these follow every notification of the same call. foca can
        // notify after reading the items only when a TurnUndead carries them
        // (Rejoin or Defunct), which foca itself never sends, so only then do
        // events come out in an order foca did not emit them.
        while let Ok(accepted) = self.accepted_broadcasts.try_recv() {
            self.control.write_event(&broadcast_event(accepted)).await?;
        }
        self.control.flush().await
    }

    /// Updates the driver's state from a notification and returns the event
    /// line to send, if the contract has one for it.
    fn observe(
        &mut self,
        notification: OwnedNotification<NodeIdentity>,
        now: Instant,
    ) -> Option<Event> {
        let event = match notification {
            OwnedNotification::MemberUp(member) => Event::MemberUp {
                member: IdentityJson::from(&member),
            },
            OwnedNotification::MemberDown(member) => Event::MemberDown {
                member: IdentityJson::from(&member),
            },
            OwnedNotification::Rename(old, new) => Event::Rename {
                old: IdentityJson::from(&old),
                new: IdentityJson::from(&new),
            },
            OwnedNotification::Active => {
                self.connection = Connection::Connected;
                self.bootstrap.stop();
                Event::Active
            }
            OwnedNotification::Idle => {
                self.connection = Connection::Disconnected;
                self.bootstrap.restart(now);
                Event::Idle
            }
            OwnedNotification::Defunct => {
                self.connection = Connection::Undead;
                self.bootstrap.stop();
                Event::Defunct
            }
            OwnedNotification::Rejoin(identity) => {
                self.identity_changed(now);
                Event::Rejoin {
                    identity: IdentityJson::from(&identity),
                }
            }
            OwnedNotification::DataReceived(header) => {
                self.stats.record_received(&header);
                return None;
            }
            OwnedNotification::DataSent(header) => {
                trace!(dst = %header.dst, message = ?header.message, "datagram sent");
                self.incarnation = header.src_incarnation;
                return None;
            }
            OwnedNotification::ProbeFailed(probe_number, member) => {
                debug!(probe_number, %member, "probe failed");
                return None;
            }
        };
        debug!(?event, "notification");
        Some(event)
    }

    /// Records what `Foca::change_identity` does: the node is disconnected
    /// at incarnation 0 until a member accepts the new identity.
    fn identity_changed(&mut self, now: Instant) {
        self.connection = Connection::Disconnected;
        self.incarnation = 0;
        self.bootstrap.restart(now);
    }

    /// Runs one command line and sends its reply after the events it caused.
    /// Returns a stop reason for `stop`.
    async fn handle_command_line(&mut self, line: &str) -> io::Result<Option<StopReason>> {
        let request = control::parse_request(line);
        let mut stop = None;
        let reply = match request.command {
            Err(message) => {
                warn!(line, error = %message, "invalid command");
                control::reply_error(request.req, message)
            }
            Ok(Command::Stop) => {
                stop = Some(StopReason::Command);
                control::reply_ok(request.req, Map::new())
            }
            Ok(command) => {
                debug!(?command, "command");
                match self.run_command(command) {
                    Ok(fields) => control::reply_ok(request.req, fields),
                    Err(message) => {
                        warn!(line, error = %message, "command failed");
                        control::reply_error(request.req, message)
                    }
                }
            }
        };
        self.drain().await?;
        self.control.write_reply(&reply).await?;
        self.control.flush().await?;
        Ok(stop)
    }

    /// Runs a command against foca and returns the reply fields, or the error
    /// message for a failed reply.
    fn run_command(&mut self, command: Command) -> Result<Map<String, Value>, String> {
        let mut fields = Map::new();
        match command {
            Command::Members => self.members_reply(&mut fields),
            Command::Stats => fields = self.stats.reply_fields(),
            Command::Broadcast {
                key,
                version,
                data,
                send,
            } => {
                let data =
                    control::from_hex(&data).map_err(|err| format!("invalid data: {err}"))?;
                let item = KeyedBroadcast { key, version, data }.encode_to_vec();
                let added = self
                    .foca
                    .add_broadcast(&item)
                    .map_err(|err| format!("add_broadcast failed: {err}"))?;
                if send {
                    self.foca.broadcast(&mut self.runtime).map_err(|err| {
                        format!("item added = {added}, but broadcast failed: {err}")
                    })?;
                }
                fields.insert("added".to_owned(), Value::Bool(added));
            }
            Command::Announce { addr } => {
                let target = NodeIdentity::announce_target(addr);
                self.foca
                    .announce(target, &mut self.runtime)
                    .map_err(|err| format!("announce to {addr} failed: {err}"))?;
            }
            Command::Gossip => self
                .foca
                .gossip(&mut self.runtime)
                .map_err(|err| format!("gossip failed: {err}"))?,
            Command::Renew => {
                let renewed = foca::Identity::renew(self.foca.identity())
                    .ok_or("cannot renew: the renewal counter is at u64::MAX")?;
                self.foca
                    .change_identity(renewed, &mut self.runtime)
                    .map_err(|err| format!("change_identity failed: {err}"))?;
                self.identity_changed(Instant::now());
                let identity = IdentityJson::from(self.foca.identity());
                fields.insert("identity".to_owned(), json!(identity));
            }
            Command::Leave => self
                .foca
                .leave_cluster(&mut self.runtime)
                .map_err(|err| format!("leave_cluster failed: {err}"))?,
            Command::Stop => unreachable!("handle_command_line answers stop itself"),
        }
        Ok(fields)
    }

    fn members_reply(&self, fields: &mut Map<String, Value>) {
        let members: Vec<Value> = self
            .foca
            .iter_membership_state()
            .map(|member| {
                json!({
                    "member": IdentityJson::from(member.id()),
                    "incarnation": member.incarnation(),
                    "state": state_name(member.state()),
                })
            })
            .collect();
        fields.insert(
            "identity".to_owned(),
            json!(IdentityJson::from(self.foca.identity())),
        );
        fields.insert("connection".to_owned(), json!(self.connection.name()));
        fields.insert("incarnation".to_owned(), json!(self.incarnation));
        fields.insert("members".to_owned(), Value::Array(members));
    }
}

/// Strips the IPv6 flow info and scope id, which the wire format does not
/// carry, so our identity equals the one peers decode and send back.
fn wire_address(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip(), addr.port())
}

fn state_name(state: State) -> &'static str {
    match state {
        State::Alive => "alive",
        State::Suspect => "suspect",
        State::Down => "down",
    }
}

fn broadcast_event(accepted: AcceptedBroadcast) -> Event {
    Event::Broadcast {
        key: accepted.item.key,
        version: accepted.item.version,
        data: control::to_hex(&accepted.item.data),
        from: accepted.from.as_ref().map(IdentityJson::from),
    }
}

fn earliest(first: Option<Instant>, second: Option<Instant>) -> Option<Instant> {
    match (first, second) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Sleeps until `deadline`, or for ever when there is none.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
