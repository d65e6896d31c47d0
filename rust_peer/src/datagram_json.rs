//! The JSON form of headers, members and datagrams shared by the `vectors`
//! file and the `oracle` subcommand. `conformance/codec_json.py` reads and
//! writes the same form on the Python side.
//!
//! An identity is `{"id": HEX, "addr": "IP:PORT", "renewal": U64}`, with
//! `[IP]:PORT` for IPv6. A message is an object whose `type` is the
//! `Header.message` field name from `proto/swim.proto`, plus the variant's
//! fields. A datagram is `{"header", "updates", "broadcasts"}`, where
//! `updates` is `null` when the datagram has no COUNT and `broadcasts` lists
//! each custom broadcast item as hex.

use std::net::SocketAddr;

use foca::{Header, Incarnation, Member, Message, ProbeNumber, State};
use serde_json::{json, Map, Value};

use crate::codec::message_type_name;
use crate::control::{from_hex, to_hex};
use crate::datagram::Datagram;
use crate::identity::NodeIdentity;

pub fn identity_to_json(identity: &NodeIdentity) -> Value {
    json!({
        "id": to_hex(&identity.id),
        "addr": identity.addr.to_string(),
        "renewal": identity.renewal,
    })
}

pub fn header_to_json(header: &Header<NodeIdentity>) -> Value {
    json!({
        "src": identity_to_json(&header.src),
        "src_incarnation": header.src_incarnation,
        "dst": identity_to_json(&header.dst),
        "message": message_to_json(&header.message),
    })
}

pub fn member_to_json(member: &Member<NodeIdentity>) -> Value {
    json!({
        "id": identity_to_json(member.id()),
        "incarnation": member.incarnation(),
        "state": state_name(member.state()),
    })
}

pub fn datagram_to_json(datagram: &Datagram) -> Value {
    let updates = datagram
        .updates
        .as_ref()
        .map(|members| Value::Array(members.iter().map(member_to_json).collect()));
    let broadcasts: Vec<Value> = datagram
        .broadcasts
        .iter()
        .map(|item| Value::String(to_hex(item)))
        .collect();
    json!({
        "header": header_to_json(&datagram.header),
        "updates": updates,
        "broadcasts": broadcasts,
    })
}

fn message_to_json(message: &Message<NodeIdentity>) -> Value {
    let mut object = Map::new();
    object.insert("type".to_owned(), json!(message_type_name(message)));
    let fields = match message {
        Message::Ping(probe_number) | Message::Ack(probe_number) => {
            vec![("probe_number", json!(probe_number))]
        }
        Message::PingReq {
            target,
            probe_number,
        }
        | Message::IndirectAck {
            target,
            probe_number,
        } => vec![
            ("target", identity_to_json(target)),
            ("probe_number", json!(probe_number)),
        ],
        Message::IndirectPing {
            origin,
            probe_number,
        }
        | Message::ForwardedAck {
            origin,
            probe_number,
        } => vec![
            ("origin", identity_to_json(origin)),
            ("probe_number", json!(probe_number)),
        ],
        Message::Announce
        | Message::Feed
        | Message::Gossip
        | Message::Broadcast
        | Message::TurnUndead => Vec::new(),
    };
    for (name, value) in fields {
        object.insert(name.to_owned(), value);
    }
    Value::Object(object)
}

fn state_name(state: State) -> &'static str {
    match state {
        State::Alive => "alive",
        State::Suspect => "suspect",
        State::Down => "down",
    }
}

/// Reads the JSON form back. Errors name the offending path, for example
/// `datagram.header.src.addr`.
pub fn datagram_from_json(value: &Value, path: &str) -> Result<Datagram, String> {
    let object = as_object(value, path)?;
    let header = header_from_json(field(object, "header", path)?, &format!("{path}.header"))?;
    let updates = match field(object, "updates", path)? {
        Value::Null => None,
        Value::Array(items) => Some(
            items
                .iter()
                .enumerate()
                .map(|(index, item)| member_from_json(item, &format!("{path}.updates[{index}]")))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        _ => return Err(format!("{path}.updates: expected null or an array")),
    };
    let broadcasts = match field(object, "broadcasts", path)? {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(index, item)| hex_from_json(item, &format!("{path}.broadcasts[{index}]")))
            .collect::<Result<Vec<_>, _>>()?,
        _ => {
            return Err(format!(
                "{path}.broadcasts: expected an array of hex strings"
            ))
        }
    };
    Ok(Datagram {
        header,
        updates,
        broadcasts,
    })
}

pub fn header_from_json(value: &Value, path: &str) -> Result<Header<NodeIdentity>, String> {
    let object = as_object(value, path)?;
    Ok(Header {
        src: identity_from_json(field(object, "src", path)?, &format!("{path}.src"))?,
        src_incarnation: incarnation_from_json(object, "src_incarnation", path)?,
        dst: identity_from_json(field(object, "dst", path)?, &format!("{path}.dst"))?,
        message: message_from_json(field(object, "message", path)?, &format!("{path}.message"))?,
    })
}

pub fn member_from_json(value: &Value, path: &str) -> Result<Member<NodeIdentity>, String> {
    let object = as_object(value, path)?;
    let id = identity_from_json(field(object, "id", path)?, &format!("{path}.id"))?;
    let incarnation = incarnation_from_json(object, "incarnation", path)?;
    let state = match field(object, "state", path)?.as_str() {
        Some("alive") => State::Alive,
        Some("suspect") => State::Suspect,
        Some("down") => State::Down,
        _ => {
            return Err(format!(
                "{path}.state: expected \"alive\", \"suspect\" or \"down\""
            ))
        }
    };
    Ok(Member::new(id, incarnation, state))
}

pub fn identity_from_json(value: &Value, path: &str) -> Result<NodeIdentity, String> {
    let object = as_object(value, path)?;
    let id = hex_from_json(field(object, "id", path)?, &format!("{path}.id"))?;
    let addr_text = field(object, "addr", path)?
        .as_str()
        .ok_or_else(|| format!("{path}.addr: expected a string IP:PORT"))?;
    let addr: SocketAddr = addr_text
        .parse()
        .map_err(|err| format!("{path}.addr: invalid address '{addr_text}': {err}"))?;
    let renewal = field(object, "renewal", path)?
        .as_u64()
        .ok_or_else(|| format!("{path}.renewal: expected an integer from 0 to {}", u64::MAX))?;
    // The wire carries no IPv6 flow info or scope id.
    Ok(NodeIdentity::new(
        id,
        SocketAddr::new(addr.ip(), addr.port()),
        renewal,
    ))
}

fn message_from_json(value: &Value, path: &str) -> Result<Message<NodeIdentity>, String> {
    let object = as_object(value, path)?;
    let kind = field(object, "type", path)?
        .as_str()
        .ok_or_else(|| format!("{path}.type: expected a string"))?;
    let identity =
        |name: &str| identity_from_json(field(object, name, path)?, &format!("{path}.{name}"));
    let probe_number = || -> Result<ProbeNumber, String> {
        let value = field(object, "probe_number", path)?;
        value
            .as_u64()
            .and_then(|number| ProbeNumber::try_from(number).ok())
            .ok_or_else(|| format!("{path}.probe_number: expected an integer from 0 to 255"))
    };
    let message = match kind {
        "ping" => Message::Ping(probe_number()?),
        "ack" => Message::Ack(probe_number()?),
        "ping_req" => Message::PingReq {
            target: identity("target")?,
            probe_number: probe_number()?,
        },
        "indirect_ping" => Message::IndirectPing {
            origin: identity("origin")?,
            probe_number: probe_number()?,
        },
        "indirect_ack" => Message::IndirectAck {
            target: identity("target")?,
            probe_number: probe_number()?,
        },
        "forwarded_ack" => Message::ForwardedAck {
            origin: identity("origin")?,
            probe_number: probe_number()?,
        },
        "announce" => Message::Announce,
        "feed" => Message::Feed,
        "gossip" => Message::Gossip,
        "broadcast" => Message::Broadcast,
        "turn_undead" => Message::TurnUndead,
        other => return Err(format!("{path}.type: unknown message type '{other}'")),
    };
    Ok(message)
}

fn incarnation_from_json(
    object: &Map<String, Value>,
    name: &str,
    path: &str,
) -> Result<Incarnation, String> {
    field(object, name, path)?
        .as_u64()
        .and_then(|number| Incarnation::try_from(number).ok())
        .ok_or_else(|| format!("{path}.{name}: expected an integer from 0 to 65535"))
}

pub fn hex_from_json(value: &Value, path: &str) -> Result<Vec<u8>, String> {
    let text = value
        .as_str()
        .ok_or_else(|| format!("{path}: expected a hex string"))?;
    from_hex(text).map_err(|err| format!("{path}: {err}"))
}

fn as_object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, String> {
    value
        .as_object()
        .ok_or_else(|| format!("{path}: expected a JSON object"))
}

fn field<'a>(object: &'a Map<String, Value>, name: &str, path: &str) -> Result<&'a Value, String> {
    object
        .get(name)
        .ok_or_else(|| format!("{path}.{name}: missing"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(text: &str) -> NodeIdentity {
        NodeIdentity::new(b"\x00id".to_vec(), text.parse().unwrap(), u64::MAX)
    }

    #[test]
    fn datagram_round_trips_through_json() {
        let target = identity("[2001:db8::1]:65535");
        for message in [
            Message::Ping(0),
            Message::Ack(255),
            Message::PingReq {
                target: target.clone(),
                probe_number: 1,
            },
            Message::IndirectPing {
                origin: target.clone(),
                probe_number: 2,
            },
            Message::IndirectAck {
                target: target.clone(),
                probe_number: 3,
            },
            Message::ForwardedAck {
                origin: target.clone(),
                probe_number: 4,
            },
            Message::Announce,
            Message::Feed,
            Message::Gossip,
            Message::Broadcast,
            Message::TurnUndead,
        ] {
            let datagram = Datagram {
                header: Header {
                    src: identity("127.0.0.1:1"),
                    src_incarnation: 65_535,
                    dst: identity("[::1]:2"),
                    message,
                },
                updates: Some(vec![Member::new(target.clone(), 9, State::Down)]),
                broadcasts: vec![vec![1, 2, 3]],
            };
            let value = datagram_to_json(&datagram);
            assert_eq!(datagram_from_json(&value, "datagram"), Ok(datagram));
        }
    }

    #[test]
    fn errors_name_the_path() {
        let mut value = datagram_to_json(&Datagram {
            header: Header {
                src: identity("127.0.0.1:1"),
                src_incarnation: 0,
                dst: identity("127.0.0.1:2"),
                message: Message::Gossip,
            },
            updates: None,
            broadcasts: Vec::new(),
        });
        value["header"]["src"]["addr"] = json!("nowhere");
        let err = datagram_from_json(&value, "datagram").unwrap_err();
        assert!(err.starts_with("datagram.header.src.addr:"), "{err}");

        value["header"]["src"]["addr"] = json!("127.0.0.1:1");
        value["header"]["src_incarnation"] = json!(65_536);
        let err = datagram_from_json(&value, "datagram").unwrap_err();
        assert!(err.starts_with("datagram.header.src_incarnation:"), "{err}");
    }
}
