//! Counters for the `stats` reply: foca errors by class, and accepted
//! datagrams by sender address and message type.

use std::collections::BTreeMap;

use foca::Header;
use serde_json::{json, Map, Value};

use crate::codec::message_type_name;
use crate::identity::NodeIdentity;

/// The contract's error classes, one per foca `Error` variant except those
/// grouped under `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    DataTooBig,
    Decode,
    DataFromOurselves,
    MalformedPacket,
    IndirectForOurselves,
    CustomBroadcast,
    IncompleteProbeCycle,
    NotConnected,
    Encode,
    /// `NotUndead`, `SameIdentity` and `InvalidConfig`, which foca returns
    /// only from `reuse_down_identity`, `change_identity` and `set_config`.
    Other,
}

impl ErrorClass {
    pub const ALL: [Self; 10] = [
        Self::DataTooBig,
        Self::Decode,
        Self::DataFromOurselves,
        Self::MalformedPacket,
        Self::IndirectForOurselves,
        Self::CustomBroadcast,
        Self::IncompleteProbeCycle,
        Self::NotConnected,
        Self::Encode,
        Self::Other,
    ];

    /// Classifies a foca error. The match lists every variant, so a foca
    /// upgrade that adds one fails to compile here until it is classified.
    pub fn of(error: &foca::Error) -> Self {
        use foca::Error;

        match error {
            Error::DataTooBig => Self::DataTooBig,
            Error::Decode(_) => Self::Decode,
            Error::DataFromOurselves => Self::DataFromOurselves,
            Error::MalformedPacket => Self::MalformedPacket,
            Error::IndirectForOurselves => Self::IndirectForOurselves,
            Error::CustomBroadcast(_) => Self::CustomBroadcast,
            Error::IncompleteProbeCycle => Self::IncompleteProbeCycle,
            Error::NotConnected => Self::NotConnected,
            Error::Encode(_) => Self::Encode,
            Error::NotUndead | Error::SameIdentity | Error::InvalidConfig => Self::Other,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::DataTooBig => "data_too_big",
            Self::Decode => "decode",
            Self::DataFromOurselves => "data_from_ourselves",
            Self::MalformedPacket => "malformed_packet",
            Self::IndirectForOurselves => "indirect_for_ourselves",
            Self::CustomBroadcast => "custom_broadcast",
            Self::IncompleteProbeCycle => "incomplete_probe_cycle",
            Self::NotConnected => "not_connected",
            Self::Encode => "encode",
            Self::Other => "other",
        }
    }

    fn index(self) -> usize {
        Self::ALL
            .iter()
            .position(|class| *class == self)
            .expect("ALL lists every class")
    }
}

#[derive(Debug, Default)]
pub struct Stats {
    errors: [u64; ErrorClass::ALL.len()],
    /// Sender `IP:PORT`, then message type name, then count.
    received: BTreeMap<String, BTreeMap<&'static str, u64>>,
}

impl Stats {
    pub fn record_error(&mut self, class: ErrorClass) {
        self.errors[class.index()] += 1;
    }

    /// Counts a datagram that foca reported with its `DataReceived`
    /// notification, under the address in `header.src`.
    pub fn record_received(&mut self, header: &Header<NodeIdentity>) {
        let by_type = self
            .received
            .entry(header.src.addr.to_string())
            .or_default();
        *by_type
            .entry(message_type_name(&header.message))
            .or_default() += 1;
    }

    /// Builds the `errors` and `received` fields of the `stats` reply. Every
    /// error class is listed, zero counts included.
    pub fn reply_fields(&self) -> Map<String, Value> {
        let errors: Map<String, Value> = ErrorClass::ALL
            .iter()
            .map(|class| (class.name().to_owned(), json!(self.errors[class.index()])))
            .collect();
        let mut fields = Map::new();
        fields.insert("errors".to_owned(), Value::Object(errors));
        fields.insert("received".to_owned(), json!(self.received));
        fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use foca::Message;

    fn header(src: &str, message: Message<NodeIdentity>) -> Header<NodeIdentity> {
        let identity = |addr: &str| NodeIdentity::new(Vec::new(), addr.parse().unwrap(), 0);
        Header {
            src: identity(src),
            src_incarnation: 0,
            dst: identity("127.0.0.1:1"),
            message,
        }
    }

    #[test]
    fn classifies_every_foca_error() {
        use foca::Error;

        let boxed = || Box::new(std::fmt::Error) as Box<dyn std::error::Error + Send + Sync>;
        let cases = [
            (Error::DataTooBig, "data_too_big"),
            (Error::Decode(boxed()), "decode"),
            (Error::DataFromOurselves, "data_from_ourselves"),
            (Error::MalformedPacket, "malformed_packet"),
            (Error::IndirectForOurselves, "indirect_for_ourselves"),
            (Error::CustomBroadcast(boxed()), "custom_broadcast"),
            (Error::IncompleteProbeCycle, "incomplete_probe_cycle"),
            (Error::NotConnected, "not_connected"),
            (Error::Encode(boxed()), "encode"),
            (Error::NotUndead, "other"),
            (Error::SameIdentity, "other"),
            (Error::InvalidConfig, "other"),
        ];
        for (error, name) in cases {
            assert_eq!(ErrorClass::of(&error).name(), name);
        }
    }

    #[test]
    fn reply_lists_all_error_classes() {
        let mut stats = Stats::default();
        stats.record_error(ErrorClass::Decode);
        stats.record_error(ErrorClass::Decode);
        let fields = stats.reply_fields();
        let errors = fields["errors"].as_object().unwrap();
        assert_eq!(errors.len(), ErrorClass::ALL.len());
        assert_eq!(errors["decode"], json!(2));
        assert_eq!(errors["other"], json!(0));
    }

    #[test]
    fn counts_received_by_sender_and_type() {
        let mut stats = Stats::default();
        stats.record_received(&header("127.0.0.1:8000", Message::Ping(1)));
        stats.record_received(&header("127.0.0.1:8000", Message::Ping(2)));
        stats.record_received(&header("127.0.0.1:8000", Message::Feed));
        stats.record_received(&header("[::1]:8001", Message::TurnUndead));
        assert_eq!(
            stats.reply_fields()["received"],
            json!({
                "127.0.0.1:8000": {"ping": 2, "feed": 1},
                "[::1]:8001": {"turn_undead": 1},
            })
        );
    }
}
