//! Keyed, versioned custom broadcasts.
//!
//! Each custom broadcast item is one `KeyedBroadcast` protobuf message, encoded
//! without a length prefix because foca frames every item with its own u16
//! length. An item is new when its version is greater than the newest version
//! seen for its key, and foca then drops the pending retransmissions of older
//! versions of that key.

use std::collections::HashMap;
use std::fmt;
use std::sync::mpsc;

use foca::{BroadcastHandler, Invalidates};
use prost::Message as _;

use crate::codec::pb::KeyedBroadcast;
use crate::identity::NodeIdentity;

/// The part of a `KeyedBroadcast` that decides which item replaces which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastKey {
    pub key: String,
    pub version: u64,
}

impl Invalidates for BroadcastKey {
    /// A newer version of the same key replaces the pending older one.
    fn invalidates(&self, other: &Self) -> bool {
        self.key == other.key && self.version > other.version
    }
}

/// A broadcast item that the handler took as new.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedBroadcast {
    pub item: KeyedBroadcast,
    /// The header `src` of the datagram that carried the item, or `None` for
    /// an item added locally with `Foca::add_broadcast`.
    pub from: Option<NodeIdentity>,
}

/// The error for a custom broadcast item that is not a valid `KeyedBroadcast`.
#[derive(Debug)]
pub struct InvalidBroadcast(prost::DecodeError);

impl fmt::Display for InvalidBroadcast {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "invalid KeyedBroadcast item: {}", self.0)
    }
}

impl std::error::Error for InvalidBroadcast {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Tracks the newest version seen per key and reports every new item.
///
/// foca owns the handler and exposes no way back to it, so accepted items go
/// out through a channel that the driver drains after each call into foca.
pub struct KeyedBroadcastHandler {
    newest_versions: HashMap<String, u64>,
    accepted: mpsc::Sender<AcceptedBroadcast>,
}

impl KeyedBroadcastHandler {
    pub fn new(accepted: mpsc::Sender<AcceptedBroadcast>) -> Self {
        Self {
            newest_versions: HashMap::new(),
            accepted,
        }
    }

    /// Records `item` and returns true when its version is newer than any
    /// seen for its key. A key seen for the first time is new at any version.
    fn record_if_new(&mut self, item: &KeyedBroadcast) -> bool {
        match self.newest_versions.get_mut(&item.key) {
            Some(newest) if *newest >= item.version => false,
            Some(newest) => {
                *newest = item.version;
                true
            }
            None => {
                self.newest_versions.insert(item.key.clone(), item.version);
                true
            }
        }
    }
}

impl BroadcastHandler<NodeIdentity> for KeyedBroadcastHandler {
    type Key = BroadcastKey;
    type Error = InvalidBroadcast;

    fn receive_item(
        &mut self,
        data: &[u8],
        sender: Option<&NodeIdentity>,
    ) -> Result<Option<BroadcastKey>, InvalidBroadcast> {
        let item = KeyedBroadcast::decode(data).map_err(InvalidBroadcast)?;
        if !self.record_if_new(&item) {
            return Ok(None);
        }

        let key = BroadcastKey {
            key: item.key.clone(),
            version: item.version,
        };
        // The driver owns the receiver for as long as foca exists, so a send
        // fails only while the process shuts down, when the event is moot.
        let _ = self.accepted.send(AcceptedBroadcast {
            item,
            from: sender.cloned(),
        });
        Ok(Some(key))
    }

    fn should_add_broadcast_data(&self, _member: &NodeIdentity) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(key: &str, version: u64, data: &[u8]) -> Vec<u8> {
        KeyedBroadcast {
            key: key.to_owned(),
            version,
            data: data.to_vec(),
        }
        .encode_to_vec()
    }

    fn sender() -> NodeIdentity {
        NodeIdentity::new(b"s".to_vec(), "127.0.0.1:7000".parse().unwrap(), 2)
    }

    fn handler() -> (KeyedBroadcastHandler, mpsc::Receiver<AcceptedBroadcast>) {
        let (tx, rx) = mpsc::channel();
        (KeyedBroadcastHandler::new(tx), rx)
    }

    fn key(key: &str, version: u64) -> BroadcastKey {
        BroadcastKey {
            key: key.to_owned(),
            version,
        }
    }

    #[test]
    fn unseen_key_is_new_at_version_zero() {
        let (mut handler, accepted) = handler();
        let result = handler.receive_item(&encoded("k", 0, b"\x01"), None);
        assert_eq!(result.unwrap(), Some(key("k", 0)));
        let event = accepted.try_recv().expect("accepted item is reported");
        assert_eq!(event.item.key, "k");
        assert_eq!(event.item.data, b"\x01");
        assert_eq!(event.from, None);
    }

    #[test]
    fn same_or_older_version_is_stale() {
        let (mut handler, accepted) = handler();
        handler.receive_item(&encoded("k", 5, b""), None).unwrap();
        accepted.try_recv().unwrap();

        for version in [5, 4, 0] {
            let result = handler.receive_item(&encoded("k", version, b"x"), Some(&sender()));
            assert_eq!(result.unwrap(), None, "version {version}");
        }
        assert!(accepted.try_recv().is_err());
    }

    #[test]
    fn newer_version_is_new_and_reported() {
        let (mut handler, accepted) = handler();
        handler.receive_item(&encoded("k", 1, b"a"), None).unwrap();
        let result = handler.receive_item(&encoded("k", 2, b"b"), Some(&sender()));
        assert_eq!(result.unwrap(), Some(key("k", 2)));

        accepted.try_recv().unwrap();
        let event = accepted.try_recv().expect("second item is reported");
        assert_eq!(event.item.version, 2);
        assert_eq!(event.from, Some(sender()));

        // The newest version is now 2, so 1 is stale again.
        let result = handler.receive_item(&encoded("k", 1, b"a"), None);
        assert_eq!(result.unwrap(), None);
    }

    #[test]
    fn keys_are_versioned_independently() {
        let (mut handler, _accepted) = handler();
        handler.receive_item(&encoded("a", 9, b""), None).unwrap();
        let result = handler.receive_item(&encoded("b", 0, b""), None);
        assert_eq!(result.unwrap(), Some(key("b", 0)));
    }

    #[test]
    fn undecodable_item_is_error() {
        let (mut handler, accepted) = handler();
        // Field 1 declared as 5 bytes long with only 1 present.
        let result = handler.receive_item(&[0x0A, 0x05, b'k'], Some(&sender()));
        assert!(result.is_err());
        assert!(accepted.try_recv().is_err());
    }

    #[test]
    fn invalidates_only_older_same_key() {
        assert!(key("k", 2).invalidates(&key("k", 1)));
        assert!(!key("k", 1).invalidates(&key("k", 1)));
        assert!(!key("k", 1).invalidates(&key("k", 2)));
        assert!(!key("k", 2).invalidates(&key("j", 1)));
    }

    #[test]
    fn adds_broadcast_data_for_everyone() {
        let (handler, _accepted) = handler();
        assert!(handler.should_add_broadcast_data(&sender()));
    }
}
