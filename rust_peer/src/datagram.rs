//! Whole datagrams as foca 1.0 frames them around [`ProtoCodec`]: the
//! header, an optional big-endian u16 COUNT with that many members, then
//! custom broadcast items, each a big-endian u16 length and that many bytes.
//!
//! foca keeps its own framing private, so the `vectors` and `oracle`
//! subcommands use this module to show a datagram's structure. Decoding runs
//! the checks of `Foca::handle_data` that depend only on the bytes, in the
//! same order. It skips the checks that depend on the receiver: whether the
//! sender is the receiver itself, and whether `dst` is the receiver.

use std::fmt;

use bytes::Buf as _;
use foca::{Codec as _, Header, Member, Message};

use crate::codec::{CodecError, ProtoCodec};
use crate::identity::NodeIdentity;

/// Bytes taken by COUNT and by the length of one custom broadcast item.
const U16_SIZE: usize = 2;

/// A datagram split into its sections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    pub header: Header<NodeIdentity>,
    /// The members after COUNT, or `None` when the datagram has no COUNT.
    pub updates: Option<Vec<Member<NodeIdentity>>>,
    /// The custom broadcast items, without their length prefixes.
    pub broadcasts: Vec<Vec<u8>>,
}

/// A datagram's first broken rule, grouped by the contract's error classes.
#[derive(Debug)]
pub enum DecodeError {
    /// The datagram is longer than the receiver's `max_packet_size`.
    TooBig { len: usize, max: usize },
    /// The codec rejected the header or member `item`.
    Codec { item: String, error: CodecError },
    /// The bytes after the header break foca's framing rules.
    Malformed(String),
}

impl DecodeError {
    /// Returns the contract's error class, which is also the class of the
    /// foca `Error` that `Foca::handle_data` returns for the same bytes.
    pub fn class(&self) -> &'static str {
        match self {
            Self::TooBig { .. } => "data_too_big",
            Self::Codec { .. } => "decode",
            Self::Malformed(_) => "malformed_packet",
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooBig { len, max } => write!(
                formatter,
                "datagram of {len} bytes is longer than max_packet_size ({max})"
            ),
            Self::Codec { item, error } => write!(formatter, "invalid {item}: {error}"),
            Self::Malformed(detail) => formatter.write_str(detail),
        }
    }
}

/// A [`Datagram`] that no sender can put on the wire, because a receiver
/// would read its bytes as a different datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidDatagram(pub String);

impl fmt::Display for InvalidDatagram {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// Splits `data` into its sections, or returns the first rule it breaks.
///
/// `max_packet_size` is the receiver's limit, and `None` skips that check.
pub fn decode(data: &[u8], max_packet_size: Option<usize>) -> Result<Datagram, DecodeError> {
    if let Some(max) = max_packet_size {
        if data.len() > max {
            return Err(DecodeError::TooBig {
                len: data.len(),
                max,
            });
        }
    }

    let mut rest = data;
    let header = ProtoCodec
        .decode_header(&mut rest)
        .map_err(|error| DecodeError::Codec {
            item: "header".to_owned(),
            error,
        })?;

    let tail_len = rest.len();
    if tail_len == 1 {
        return Err(DecodeError::Malformed(
            "datagram has a 1-byte tail after the header".to_owned(),
        ));
    }
    if header.message == Message::Announce && tail_len > 0 {
        return Err(DecodeError::Malformed(format!(
            "Announce has {tail_len} bytes after the header: expected none"
        )));
    }

    // foca reads COUNT for every message but Broadcast, TurnUndead included,
    // although no foca sender writes one after a TurnUndead.
    let updates = if tail_len >= U16_SIZE && header.message != Message::Broadcast {
        let count = rest.get_u16();
        let mut members = Vec::with_capacity(usize::from(count));
        for index in 0..count {
            let member =
                ProtoCodec
                    .decode_member(&mut rest)
                    .map_err(|error| DecodeError::Codec {
                        item: format!("update {index} of {count}"),
                        error,
                    })?;
            members.push(member);
        }
        Some(members)
    } else {
        None
    };

    let broadcasts = split_broadcasts(rest)?;
    Ok(Datagram {
        header,
        updates,
        broadcasts,
    })
}

/// Splits the custom broadcast tail into items, as foca's receiver does.
fn split_broadcasts(mut tail: &[u8]) -> Result<Vec<Vec<u8>>, DecodeError> {
    if !tail.is_empty() && tail.len() <= U16_SIZE {
        return Err(DecodeError::Malformed(format!(
            "custom broadcast tail of {} bytes: expected none or at least 3",
            tail.len()
        )));
    }
    let mut items = Vec::new();
    while tail.len() > U16_SIZE {
        let len = usize::from(tail.get_u16());
        if len == 0 || len > tail.len() {
            return Err(DecodeError::Malformed(format!(
                "custom broadcast item {} has length {len}: expected 1 to {}",
                items.len(),
                tail.len()
            )));
        }
        items.push(tail[..len].to_vec());
        tail.advance(len);
    }
    if !tail.is_empty() {
        return Err(DecodeError::Malformed(format!(
            "custom broadcast tail ends with {} stray bytes",
            tail.len()
        )));
    }
    Ok(items)
}

/// Writes `datagram` with the framing that [`decode`] reads back to the same
/// value. Rejects section combinations that would read back differently.
pub fn encode(datagram: &Datagram) -> Result<Vec<u8>, InvalidDatagram> {
    check_sections(datagram)?;

    let mut data = Vec::new();
    ProtoCodec
        .encode_header(&datagram.header, &mut data)
        .map_err(|err| InvalidDatagram(format!("header does not encode: {err}")))?;
    if let Some(updates) = &datagram.updates {
        let count = u16::try_from(updates.len())
            .map_err(|_| InvalidDatagram(format!("{} updates: COUNT is a u16", updates.len())))?;
        data.extend_from_slice(&count.to_be_bytes());
        for member in updates {
            ProtoCodec
                .encode_member(member, &mut data)
                .map_err(|err| InvalidDatagram(format!("member does not encode: {err}")))?;
        }
    }
    for item in &datagram.broadcasts {
        let len = u16::try_from(item.len()).map_err(|_| {
            InvalidDatagram(format!(
                "custom broadcast item of {} bytes: expected at most 65535",
                item.len()
            ))
        })?;
        data.extend_from_slice(&len.to_be_bytes());
        data.extend_from_slice(item);
    }
    Ok(data)
}

fn check_sections(datagram: &Datagram) -> Result<(), InvalidDatagram> {
    let message = &datagram.header.message;
    let has_broadcasts = !datagram.broadcasts.is_empty();
    if *message == Message::Announce && (datagram.updates.is_some() || has_broadcasts) {
        return Err(InvalidDatagram(
            "an Announce is the header alone: receivers reject any bytes after it".to_owned(),
        ));
    }
    if *message == Message::Broadcast && datagram.updates.is_some() {
        return Err(InvalidDatagram(
            "a Broadcast has no COUNT: receivers read the bytes after the header as custom \
             broadcast items"
                .to_owned(),
        ));
    }
    if *message != Message::Broadcast && datagram.updates.is_none() && has_broadcasts {
        return Err(InvalidDatagram(
            "custom broadcast items need a COUNT before them, even 0: receivers read the first \
             two bytes after the header as COUNT"
                .to_owned(),
        ));
    }
    if datagram.broadcasts.iter().any(Vec::is_empty) {
        return Err(InvalidDatagram(
            "a custom broadcast item is empty: receivers reject length 0".to_owned(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use foca::State;

    fn identity(text: &str, id: &[u8]) -> NodeIdentity {
        NodeIdentity::new(id.to_vec(), text.parse().unwrap(), 3)
    }

    fn header(message: Message<NodeIdentity>) -> Header<NodeIdentity> {
        Header {
            src: identity("127.0.0.1:7001", b"a"),
            src_incarnation: 4,
            dst: identity("[::1]:7002", b""),
            message,
        }
    }

    fn datagram(
        message: Message<NodeIdentity>,
        updates: Option<Vec<Member<NodeIdentity>>>,
        broadcasts: &[&[u8]],
    ) -> Datagram {
        Datagram {
            header: header(message),
            updates,
            broadcasts: broadcasts.iter().map(|item| item.to_vec()).collect(),
        }
    }

    #[test]
    fn round_trips_every_section_combination() {
        let member = Member::new(identity("10.0.0.1:1", b"m"), 65_535, State::Suspect);
        let cases = [
            datagram(Message::Ping(7), None, &[]),
            datagram(Message::Ping(7), Some(vec![]), &[]),
            datagram(Message::Gossip, Some(vec![member.clone()]), &[b"xyz", b"q"]),
            datagram(Message::Broadcast, None, &[b"item"]),
            datagram(Message::Broadcast, None, &[]),
            datagram(Message::TurnUndead, Some(vec![member]), &[]),
            datagram(Message::Announce, None, &[]),
        ];
        for case in cases {
            let bytes = encode(&case).expect("valid datagram encodes");
            assert_eq!(
                decode(&bytes, None).expect("encoded datagram decodes"),
                case
            );
        }
    }

    #[test]
    fn encode_rejects_ambiguous_sections() {
        let cases = [
            datagram(Message::Announce, Some(vec![]), &[]),
            datagram(Message::Announce, None, &[b"x"]),
            datagram(Message::Broadcast, Some(vec![]), &[]),
            datagram(Message::Ack(1), None, &[b"x"]),
            datagram(Message::Gossip, Some(vec![]), &[b""]),
        ];
        for case in cases {
            assert!(encode(&case).is_err(), "{case:?}");
        }
    }

    #[test]
    fn rejects_tails_like_foca() {
        let mut ping = encode(&datagram(Message::Ping(1), None, &[])).unwrap();
        ping.push(0);
        assert_eq!(decode(&ping, None).unwrap_err().class(), "malformed_packet");

        let mut announce = encode(&datagram(Message::Announce, None, &[])).unwrap();
        announce.extend_from_slice(&[0, 0]);
        assert_eq!(
            decode(&announce, None).unwrap_err().class(),
            "malformed_packet"
        );

        // COUNT 0, then a 2-byte tail that cannot hold an item.
        let mut gossip = encode(&datagram(Message::Gossip, Some(vec![]), &[])).unwrap();
        gossip.extend_from_slice(&[0, 1]);
        assert_eq!(
            decode(&gossip, None).unwrap_err().class(),
            "malformed_packet"
        );

        // COUNT 1 with no member after it.
        let mut short = encode(&datagram(Message::Gossip, None, &[])).unwrap();
        short.extend_from_slice(&[0, 1, 0xff]);
        assert_eq!(decode(&short, None).unwrap_err().class(), "decode");
    }

    #[test]
    fn rejects_bad_item_lengths() {
        let base = encode(&datagram(Message::Broadcast, None, &[])).unwrap();
        for tail in [&[0u8, 0, 1][..], &[0, 5, 1, 2], &[0, 1, 9, 0, 0]] {
            let mut bytes = base.clone();
            bytes.extend_from_slice(tail);
            let err = decode(&bytes, None).unwrap_err();
            assert_eq!(err.class(), "malformed_packet", "{tail:?}: {err}");
        }
    }

    #[test]
    fn size_check_comes_first() {
        let bytes = [0xffu8; 10];
        assert_eq!(decode(&bytes, Some(9)).unwrap_err().class(), "data_too_big");
        assert_eq!(decode(&bytes, Some(10)).unwrap_err().class(), "decode");
    }
}
