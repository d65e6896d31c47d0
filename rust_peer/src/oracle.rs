//! The `oracle` subcommand: rust_peer's codec and foca's receive path as a
//! JSON-lines service, so that tests can compare swim_py with foca on any
//! bytes.
//!
//! Each line on stdin is one request object and gets exactly one reply line
//! on stdout, in order. The JSON forms are those of [`crate::datagram_json`].
//!
//! | request | reply |
//! |---|---|
//! | `{"op": "decode_header", "hex": H}` | `{"header": {...}, "end": N}` |
//! | `{"op": "decode_member", "hex": H}` | `{"member": {...}, "end": N}` |
//! | `{"op": "encode_header", "header": {...}}` | `{"hex": H}` |
//! | `{"op": "encode_member", "member": {...}}` | `{"hex": H}` |
//! | `{"op": "decode_datagram", "hex": H, "max_packet_size": N}` | `{"datagram": {...}, "foca": {...}}` |
//! | `{"op": "encode_datagram", "datagram": {...}}` | `{"hex": H}` |
//!
//! `end` is the number of bytes the item took, length prefix included.
//! `max_packet_size` is optional. A rejected input gets
//! `{"error": CLASS, "detail": TEXT}` instead, with CLASS one of the
//! contract's error classes (`decode`, `malformed_packet`, `data_too_big`),
//! `invalid_datagram` for a datagram structure that has no valid encoding, or
//! `invalid_request` for a request that cannot be read.
//!
//! `decode_datagram` also hands the bytes to a fresh `Foca` whose identity is
//! the decoded header's `dst`, so the datagram is addressed to it. The reply
//! then has `"foca": {"result": "ok" or CLASS, "detail", "data_received"}`:
//! what `Foca::handle_data` returned, and the header of its `DataReceived`
//! notification or `null`. That instance accepts every custom broadcast
//! item, so its result differs from the framing verdict only through checks
//! that depend on the receiver: `data_from_ourselves` when `src` has the
//! address of `dst`, `indirect_for_ourselves` for an indirect probe message
//! that names `dst`, and `encode` when a reply does not fit in a small
//! `max_packet_size`.

use std::convert::Infallible;
use std::io::{self, BufRead, Write};
use std::num::NonZeroUsize;

use foca::{
    AccumulatingRuntime, BroadcastHandler, Codec as _, Config, Foca, Invalidates, OwnedNotification,
};
use rand::rngs::StdRng;
use rand::SeedableRng as _;
use serde_json::{json, Map, Value};

use crate::codec::ProtoCodec;
use crate::control::to_hex;
use crate::datagram;
use crate::datagram_json::{
    datagram_from_json, datagram_to_json, header_from_json, header_to_json, hex_from_json,
    member_from_json, member_to_json,
};
use crate::identity::NodeIdentity;
use crate::stats::ErrorClass;

/// The receiver's `max_packet_size` when a request gives none: the largest
/// UDP payload, so that only the framing rules decide.
const DEFAULT_MAX_PACKET_SIZE: usize = 65_535;

/// Serves requests from stdin until it closes.
pub fn run() -> io::Result<()> {
    let stdin = io::stdin();
    let mut stdout = io::BufWriter::new(io::stdout().lock());
    for line in stdin.lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let reply = handle_line(&line);
        serde_json::to_writer(&mut stdout, &reply)?;
        stdout.write_all(b"\n")?;
        stdout.flush()?;
    }
    Ok(())
}

/// Builds the reply to one request line.
pub fn handle_line(line: &str) -> Value {
    let request: Value = match serde_json::from_str(line) {
        Ok(request) => request,
        Err(err) => return error("invalid_request", format!("invalid JSON: {err}")),
    };
    match handle_request(&request) {
        Ok(reply) => reply,
        Err(message) => error("invalid_request", message),
    }
}

fn error(class: &str, detail: impl Into<String>) -> Value {
    json!({"error": class, "detail": detail.into()})
}

/// Returns the reply, or `Err` with the reason the request is invalid.
fn handle_request(request: &Value) -> Result<Value, String> {
    let op = request
        .get("op")
        .and_then(Value::as_str)
        .ok_or("missing \"op\": expected a string")?;
    let reply = match op {
        "decode_header" => {
            let data = hex_field(request)?;
            let mut rest = data.as_slice();
            match ProtoCodec.decode_header(&mut rest) {
                Ok(header) => json!({
                    "header": header_to_json(&header),
                    "end": data.len() - rest.len(),
                }),
                Err(err) => error("decode", err.to_string()),
            }
        }
        "decode_member" => {
            let data = hex_field(request)?;
            let mut rest = data.as_slice();
            match ProtoCodec.decode_member(&mut rest) {
                Ok(member) => json!({
                    "member": member_to_json(&member),
                    "end": data.len() - rest.len(),
                }),
                Err(err) => error("decode", err.to_string()),
            }
        }
        "encode_header" => {
            let header = header_from_json(required(request, "header")?, "header")?;
            let mut data = Vec::new();
            ProtoCodec
                .encode_header(&header, &mut data)
                .map_err(|err| format!("header does not encode: {err}"))?;
            json!({"hex": to_hex(&data)})
        }
        "encode_member" => {
            let member = member_from_json(required(request, "member")?, "member")?;
            let mut data = Vec::new();
            ProtoCodec
                .encode_member(&member, &mut data)
                .map_err(|err| format!("member does not encode: {err}"))?;
            json!({"hex": to_hex(&data)})
        }
        "decode_datagram" => decode_datagram(request)?,
        "encode_datagram" => {
            let datagram = datagram_from_json(required(request, "datagram")?, "datagram")?;
            match datagram::encode(&datagram) {
                Ok(data) => json!({"hex": to_hex(&data)}),
                Err(err) => error("invalid_datagram", err.to_string()),
            }
        }
        other => return Err(format!("unknown op '{other}'")),
    };
    Ok(reply)
}

fn decode_datagram(request: &Value) -> Result<Value, String> {
    let data = hex_field(request)?;
    let max_packet_size = match request.get("max_packet_size") {
        None | Some(Value::Null) => None,
        Some(value) => Some(
            value
                .as_u64()
                .and_then(|size| usize::try_from(size).ok())
                .filter(|size| (1..=DEFAULT_MAX_PACKET_SIZE).contains(size))
                .ok_or("max_packet_size: expected an integer from 1 to 65535")?,
        ),
    };

    let framing = datagram::decode(&data, max_packet_size);
    let receiver = match &framing {
        Ok(decoded) => decoded.header.dst.clone(),
        Err(_) => {
            // The header may still decode when a later section is invalid.
            let mut rest = data.as_slice();
            ProtoCodec
                .decode_header(&mut rest)
                .map(|header| header.dst)
                .unwrap_or_else(|_| NodeIdentity::announce_target(([0, 0, 0, 0], 0).into()))
        }
    };
    let foca = foca_verdict(
        &data,
        receiver,
        max_packet_size.unwrap_or(DEFAULT_MAX_PACKET_SIZE),
    );

    let mut reply = Map::new();
    match framing {
        Ok(decoded) => {
            reply.insert("datagram".to_owned(), datagram_to_json(&decoded));
        }
        Err(err) => {
            reply.insert("error".to_owned(), json!(err.class()));
            reply.insert("detail".to_owned(), json!(err.to_string()));
        }
    }
    reply.insert("foca".to_owned(), foca);
    Ok(Value::Object(reply))
}

/// Feeds `data` to a fresh foca instance with identity `receiver` and
/// reports its result and `DataReceived` header.
fn foca_verdict(data: &[u8], receiver: NodeIdentity, max_packet_size: usize) -> Value {
    let mut config = Config::simple();
    config.max_packet_size =
        NonZeroUsize::new(max_packet_size).expect("the request check rejects 0");
    let mut foca = Foca::with_custom_broadcast(
        receiver,
        config,
        StdRng::seed_from_u64(0),
        ProtoCodec,
        AcceptEveryItem,
    );
    let mut runtime = AccumulatingRuntime::new();
    let result = foca.handle_data(data, &mut runtime);

    let mut data_received = Value::Null;
    while let Some(notification) = runtime.to_notify() {
        if let OwnedNotification::DataReceived(header) = notification {
            data_received = header_to_json(&header);
        }
    }
    let (class, detail) = match &result {
        Ok(()) => ("ok", Value::Null),
        Err(err) => (ErrorClass::of(err).name(), json!(err.to_string())),
    };
    json!({"result": class, "detail": detail, "data_received": data_received})
}

fn hex_field(request: &Value) -> Result<Vec<u8>, String> {
    hex_from_json(required(request, "hex")?, "hex")
}

fn required<'a>(request: &'a Value, name: &str) -> Result<&'a Value, String> {
    request
        .get(name)
        .ok_or_else(|| format!("missing \"{name}\""))
}

/// A broadcast handler that takes every item as valid and stale, so custom
/// broadcast items never cause an error and are never stored.
struct AcceptEveryItem;

/// The key type of [`AcceptEveryItem`], which never returns one.
struct NoKey;

impl Invalidates for NoKey {
    fn invalidates(&self, _other: &Self) -> bool {
        false
    }
}

impl BroadcastHandler<NodeIdentity> for AcceptEveryItem {
    type Key = NoKey;
    type Error = Infallible;

    fn receive_item(
        &mut self,
        _data: &[u8],
        _sender: Option<&NodeIdentity>,
    ) -> Result<Option<NoKey>, Infallible> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use foca::{Header, Message};

    fn request(value: Value) -> Value {
        handle_line(&value.to_string())
    }

    fn sample_datagram(message: Message<NodeIdentity>) -> datagram::Datagram {
        datagram::Datagram {
            header: Header {
                src: NodeIdentity::new(b"s".to_vec(), "127.0.0.1:1".parse().unwrap(), 0),
                src_incarnation: 1,
                dst: NodeIdentity::new(b"d".to_vec(), "[::1]:2".parse().unwrap(), 2),
                message,
            },
            updates: Some(Vec::new()),
            broadcasts: vec![vec![7, 7, 7]],
        }
    }

    #[test]
    fn decodes_and_encodes_datagram() {
        let datagram = sample_datagram(Message::Ping(9));
        let data = datagram::encode(&datagram).unwrap();
        let reply = request(json!({"op": "decode_datagram", "hex": to_hex(&data)}));
        assert_eq!(reply["datagram"], datagram_to_json(&datagram));
        assert_eq!(reply["foca"]["result"], "ok");
        assert_eq!(
            reply["foca"]["data_received"],
            header_to_json(&datagram.header)
        );

        let reply = request(json!({"op": "encode_datagram", "datagram": reply["datagram"]}));
        assert_eq!(reply["hex"], to_hex(&data));
    }

    #[test]
    fn reports_framing_error_and_foca_class() {
        let mut data = datagram::encode(&sample_datagram(Message::Gossip)).unwrap();
        data.push(0);
        let reply = request(json!({"op": "decode_datagram", "hex": to_hex(&data)}));
        assert_eq!(reply["error"], "malformed_packet");
        assert_eq!(reply["foca"]["result"], "malformed_packet");
        // foca reports the header before it reads the broadcast tail.
        assert!(reply["foca"]["data_received"].is_object());
    }

    #[test]
    fn size_limit_applies_to_both() {
        let data = datagram::encode(&sample_datagram(Message::Gossip)).unwrap();
        let reply = request(json!({
            "op": "decode_datagram",
            "hex": to_hex(&data),
            "max_packet_size": data.len() - 1,
        }));
        assert_eq!(reply["error"], "data_too_big");
        assert_eq!(reply["foca"]["result"], "data_too_big");
    }

    #[test]
    fn foca_rejects_src_with_receiver_address() {
        let mut datagram = sample_datagram(Message::Gossip);
        datagram.header.src.addr = datagram.header.dst.addr;
        let data = datagram::encode(&datagram).unwrap();
        let reply = request(json!({"op": "decode_datagram", "hex": to_hex(&data)}));
        assert!(reply["datagram"].is_object());
        assert_eq!(reply["foca"]["result"], "data_from_ourselves");
    }

    #[test]
    fn header_and_member_ops_report_end() {
        let header = sample_datagram(Message::Ack(3)).header;
        let reply = request(json!({"op": "encode_header", "header": header_to_json(&header)}));
        let hex = reply["hex"].as_str().unwrap().to_owned();
        let reply = request(json!({"op": "decode_header", "hex": format!("{hex}ff")}));
        assert_eq!(reply["header"], header_to_json(&header));
        assert_eq!(reply["end"], hex.len() / 2);

        let reply = request(json!({"op": "decode_member", "hex": "00"}));
        assert_eq!(reply["error"], "decode");
    }

    #[test]
    fn invalid_requests_are_named() {
        for (line, expected) in [
            ("not json", "invalid JSON"),
            ("{}", "missing \"op\""),
            (r#"{"op": "dance"}"#, "unknown op 'dance'"),
            (r#"{"op": "decode_header"}"#, "missing \"hex\""),
            (
                r#"{"op": "decode_header", "hex": "0"}"#,
                "odd number of digits",
            ),
        ] {
            let reply = handle_line(line);
            assert_eq!(reply["error"], "invalid_request", "{line}");
            let detail = reply["detail"].as_str().unwrap();
            assert!(detail.contains(expected), "{line}: {detail}");
        }
    }

    #[test]
    fn invalid_datagram_has_its_own_class() {
        let mut value = datagram_to_json(&sample_datagram(Message::Broadcast));
        value["updates"] = json!([]);
        let reply = request(json!({"op": "encode_datagram", "datagram": value}));
        assert_eq!(reply["error"], "invalid_datagram");
    }
}
