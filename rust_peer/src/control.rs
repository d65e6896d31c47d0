//! The JSON-lines control channel to the conformance harness: the ready line,
//! event lines, command parsing and replies.
//!
//! Every line is one JSON object followed by `\n`, in both directions.
//! The node connects to the harness (`--control`), or listens for the
//! harness to connect (`--control-listen`, for nodes in containers). Without
//! either it runs standalone and logs the ready line and events to stderr.

use std::fmt;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, BufWriter, Lines};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tracing::info;

use crate::identity::NodeIdentity;

/// The peer contract version this node implements.
pub const CONTRACT_VERSION: u32 = 1;

/// Formats bytes as lower-case hex.
pub fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;

    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// Parses hex of either case. An empty string is zero bytes.
pub fn from_hex(text: &str) -> Result<Vec<u8>, String> {
    if !text.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(format!(
            "invalid hex '{text}': expected only digits 0-9 and a-f"
        ));
    }
    if text.len() % 2 != 0 {
        return Err(format!("invalid hex '{text}': odd number of digits"));
    }
    let pairs = text.as_bytes().chunks_exact(2);
    Ok(pairs
        .map(|pair| (hex_digit(pair[0]) << 4) | hex_digit(pair[1]))
        .collect())
}

/// Converts one ASCII hex digit, already checked, to its value.
fn hex_digit(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

/// Seconds since the Unix epoch, from the system clock.
pub fn unix_ts() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64())
}

/// An identity as the contract writes it: hex id, `IP:PORT` (`[IP]:PORT` for
/// IPv6) and the renewal counter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentityJson {
    pub id: String,
    pub addr: String,
    pub renewal: u64,
}

impl From<&NodeIdentity> for IdentityJson {
    fn from(identity: &NodeIdentity) -> Self {
        Self {
            id: to_hex(&identity.id),
            addr: identity.addr.to_string(),
            renewal: identity.renewal,
        }
    }
}

/// Formats as `hex(id)@addr#renewal`, with `-` for an empty id, for log
/// lines.
impl fmt::Display for IdentityJson {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = if self.id.is_empty() { "-" } else { &self.id };
        write!(formatter, "{id}@{}#{}", self.addr, self.renewal)
    }
}

/// The first line the node sends.
#[derive(Debug, Serialize)]
pub struct ReadyLine {
    #[serde(rename = "type")]
    pub line_type: &'static str,
    pub ts: f64,
    pub contract: u32,
    #[serde(rename = "impl")]
    pub implementation: &'static str,
    pub version: String,
    pub identity: IdentityJson,
    pub bind: String,
    pub pid: u32,
    pub config: Value,
}

/// The notification an event line reports, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    MemberUp {
        member: IdentityJson,
    },
    MemberDown {
        member: IdentityJson,
    },
    Rename {
        old: IdentityJson,
        new: IdentityJson,
    },
    Active,
    Idle,
    Defunct,
    Rejoin {
        identity: IdentityJson,
    },
    Broadcast {
        key: String,
        version: u64,
        /// Hex of `KeyedBroadcast.data`.
        data: String,
        /// The sender, or `None` for an item added by this node.
        from: Option<IdentityJson>,
    },
}

/// Formats the event for standalone mode's log lines, for example
/// `member_up -@127.0.0.1:8000#0`.
impl fmt::Display for Event {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MemberUp { member } => write!(formatter, "member_up {member}"),
            Self::MemberDown { member } => write!(formatter, "member_down {member}"),
            Self::Rename { old, new } => write!(formatter, "rename {old} -> {new}"),
            Self::Active => formatter.write_str("active"),
            Self::Idle => formatter.write_str("idle"),
            Self::Defunct => formatter.write_str("defunct"),
            Self::Rejoin { identity } => write!(formatter, "rejoin {identity}"),
            Self::Broadcast {
                key,
                version,
                data,
                from,
            } => {
                write!(
                    formatter,
                    "broadcast key={key} version={version} data={data} from="
                )?;
                match from {
                    Some(sender) => write!(formatter, "{sender}"),
                    None => formatter.write_str("local"),
                }
            }
        }
    }
}

#[derive(Debug, Serialize)]
struct EventLine<'a> {
    #[serde(rename = "type")]
    line_type: &'static str,
    ts: f64,
    #[serde(flatten)]
    event: &'a Event,
}

/// A harness command, selected by its `cmd` field.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    Members,
    Stats,
    Broadcast {
        key: String,
        version: u64,
        /// Hex of the `KeyedBroadcast.data` bytes.
        #[serde(default)]
        data: String,
        /// Whether to call foca's `broadcast()` after adding the item.
        #[serde(default)]
        send: bool,
    },
    Announce {
        addr: SocketAddr,
    },
    Gossip,
    Renew,
    Leave,
    Stop,
}

/// One command line: the `req` value to echo, and the command or the reason
/// it is invalid.
#[derive(Debug)]
pub struct Request {
    pub req: Value,
    pub command: Result<Command, String>,
}

/// Parses one command line. A line that is not a JSON object still gets a
/// reply, with `req` null when it cannot be read.
pub fn parse_request(line: &str) -> Request {
    let value: Value = match serde_json::from_str(line) {
        Ok(value) => value,
        Err(err) => {
            return Request {
                req: Value::Null,
                command: Err(format!("invalid JSON: {err}")),
            }
        }
    };
    let req = value.get("req").cloned().unwrap_or(Value::Null);
    if !value.is_object() {
        return Request {
            req,
            command: Err("invalid command: expected a JSON object".to_owned()),
        };
    }
    let command = Command::deserialize(value).map_err(|err| format!("invalid command: {err}"));
    Request { req, command }
}

/// Builds a successful reply carrying `fields` after `type`, `req` and `ok`.
pub fn reply_ok(req: Value, fields: Map<String, Value>) -> Value {
    let mut reply = reply_base(req, true);
    reply.extend(fields);
    Value::Object(reply)
}

pub fn reply_error(req: Value, error: impl Into<String>) -> Value {
    let mut reply = reply_base(req, false);
    reply.insert("error".to_owned(), Value::String(error.into()));
    Value::Object(reply)
}

fn reply_base(req: Value, ok: bool) -> Map<String, Value> {
    let mut reply = Map::new();
    reply.insert("type".to_owned(), Value::from("reply"));
    reply.insert("req".to_owned(), req);
    reply.insert("ok".to_owned(), Value::Bool(ok));
    reply
}

/// The direction of the control connection, from `--control` and
/// `--control-listen`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlMode {
    /// Connect to the harness's listener at this address.
    Connect(SocketAddr),
    /// Listen on this address and take the first connection as the control
    /// connection, then stop listening.
    Listen(SocketAddr),
    /// No harness: log the ready line and events to stderr.
    Standalone,
}

/// The destination of the node's lines: the harness's TCP connection, or log
/// lines on stderr in standalone mode.
pub struct ControlChannel {
    connection: Option<Connection>,
}

struct Connection {
    lines: Lines<BufReader<OwnedReadHalf>>,
    writer: BufWriter<OwnedWriteHalf>,
}

impl ControlChannel {
    /// Opens the channel that `mode` names. In listen mode this waits until
    /// the harness connects.
    pub async fn open(mode: ControlMode) -> anyhow::Result<Self> {
        match mode {
            ControlMode::Connect(addr) => Self::connect(addr).await,
            ControlMode::Listen(addr) => {
                let listener = TcpListener::bind(addr).await.with_context(|| {
                    format!("failed to listen for the control connection on {addr}")
                })?;
                Self::accept(listener).await
            }
            ControlMode::Standalone => Ok(Self::standalone()),
        }
    }

    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("failed to connect to the control listener at {addr}"))?;
        Self::from_stream(stream)
    }

    /// Waits for one connection on `listener` and closes the listener, so
    /// that later connection attempts are refused.
    pub async fn accept(listener: TcpListener) -> anyhow::Result<Self> {
        let local = listener
            .local_addr()
            .context("failed to read the control listener's address")?;
        info!(%local, "waiting for the control connection");
        let (stream, peer) = listener
            .accept()
            .await
            .with_context(|| format!("failed to accept the control connection on {local}"))?;
        drop(listener);
        info!(%peer, "control connection accepted");
        Self::from_stream(stream)
    }

    fn from_stream(stream: TcpStream) -> anyhow::Result<Self> {
        // Lines are small and the harness waits on each, so send them at once.
        stream
            .set_nodelay(true)
            .context("failed to set TCP_NODELAY on the control connection")?;
        let (reader, writer) = stream.into_split();
        Ok(Self {
            connection: Some(Connection {
                lines: BufReader::new(reader).lines(),
                writer: BufWriter::new(writer),
            }),
        })
    }

    /// Creates a channel that logs the ready line and events and never yields
    /// a command.
    pub fn standalone() -> Self {
        Self { connection: None }
    }

    /// Reads the next command line, or `None` once the harness has closed
    /// the connection. Cancel-safe, so it can sit in a `select!`. In
    /// standalone mode it never completes.
    pub async fn next_line(&mut self) -> std::io::Result<Option<String>> {
        match &mut self.connection {
            Some(connection) => connection.lines.next_line().await,
            None => std::future::pending().await,
        }
    }

    pub async fn write_ready(&mut self, ready: &ReadyLine) -> std::io::Result<()> {
        if self.connection.is_none() {
            info!(
                identity = %ready.identity,
                bind = %ready.bind,
                version = %ready.version,
                config = %ready.config,
                "ready"
            );
            return Ok(());
        }
        self.write_line(ready).await
    }

    pub async fn write_event(&mut self, event: &Event) -> std::io::Result<()> {
        if self.connection.is_none() {
            info!("event {event}");
            return Ok(());
        }
        self.write_line(&EventLine {
            line_type: "event",
            ts: unix_ts(),
            event,
        })
        .await
    }

    /// Queues a reply. Replies exist only on a connection, since standalone
    /// mode reads no commands.
    pub async fn write_reply(&mut self, reply: &Value) -> std::io::Result<()> {
        self.write_line(reply).await
    }

    /// Queues one JSON line. Call [`Self::flush`] to send what is queued.
    async fn write_line(&mut self, line: &impl Serialize) -> std::io::Result<()> {
        let Some(connection) = &mut self.connection else {
            return Ok(());
        };
        let mut bytes = serde_json::to_vec(line).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        connection.writer.write_all(&bytes).await
    }

    pub async fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.connection {
            Some(connection) => connection.writer.flush().await,
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn identity() -> NodeIdentity {
        NodeIdentity::new(vec![0xAB, 0x01], "[::1]:9000".parse().unwrap(), 3)
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(to_hex(&[0x00, 0xAB, 0xFF]), "00abff");
        assert_eq!(from_hex("00abFF").unwrap(), vec![0x00, 0xAB, 0xFF]);
        assert_eq!(from_hex("").unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn hex_rejects_bad_text() {
        for text in ["a", "zz", "0g", "+1", "é0"] {
            assert!(from_hex(text).is_err(), "{text}");
        }
    }

    #[test]
    fn identity_json_brackets_ipv6() {
        let value = serde_json::to_value(IdentityJson::from(&identity())).unwrap();
        assert_eq!(
            value,
            json!({"id": "ab01", "addr": "[::1]:9000", "renewal": 3})
        );
    }

    #[test]
    fn event_line_has_type_ts_kind() {
        let event = Event::Rename {
            old: IdentityJson::from(&identity()),
            new: IdentityJson::from(&identity()),
        };
        let line = EventLine {
            line_type: "event",
            ts: 1.5,
            event: &event,
        };
        let value = serde_json::to_value(&line).unwrap();
        assert_eq!(value["type"], "event");
        assert_eq!(value["ts"], 1.5);
        assert_eq!(value["kind"], "rename");
        assert_eq!(value["old"]["addr"], "[::1]:9000");
    }

    #[test]
    fn unit_events_have_only_kind() {
        let value = serde_json::to_value(Event::Active).unwrap();
        assert_eq!(value, json!({"kind": "active"}));
    }

    #[test]
    fn broadcast_event_from_can_be_null() {
        let event = Event::Broadcast {
            key: "k".to_owned(),
            version: 3,
            data: "00".to_owned(),
            from: None,
        };
        let value = serde_json::to_value(event).unwrap();
        assert_eq!(
            value,
            json!({"kind": "broadcast", "key": "k", "version": 3, "data": "00", "from": null})
        );
    }

    #[test]
    fn events_display_for_logs() {
        let member = IdentityJson::from(&identity());
        let anonymous = IdentityJson {
            id: String::new(),
            addr: "127.0.0.1:8000".to_owned(),
            renewal: 0,
        };
        let rename = Event::Rename {
            old: anonymous,
            new: member.clone(),
        };
        assert_eq!(
            rename.to_string(),
            "rename -@127.0.0.1:8000#0 -> ab01@[::1]:9000#3"
        );
        let broadcast = Event::Broadcast {
            key: "k".to_owned(),
            version: 1,
            data: "ff".to_owned(),
            from: None,
        };
        assert_eq!(
            broadcast.to_string(),
            "broadcast key=k version=1 data=ff from=local"
        );
        assert_eq!(Event::Idle.to_string(), "idle");
    }

    #[test]
    fn parses_every_command() {
        let cases = [
            (r#"{"cmd": "members", "req": 1}"#, Command::Members),
            (r#"{"cmd": "stats", "req": 2}"#, Command::Stats),
            (
                r#"{"cmd": "broadcast", "req": 3, "key": "k", "version": 4, "data": "ff", "send": true}"#,
                Command::Broadcast {
                    key: "k".to_owned(),
                    version: 4,
                    data: "ff".to_owned(),
                    send: true,
                },
            ),
            (
                r#"{"cmd": "announce", "req": 4, "addr": "127.0.0.1:9"}"#,
                Command::Announce {
                    addr: "127.0.0.1:9".parse().unwrap(),
                },
            ),
            (r#"{"cmd": "gossip", "req": 5}"#, Command::Gossip),
            (r#"{"cmd": "renew", "req": 6}"#, Command::Renew),
            (r#"{"cmd": "leave", "req": 7}"#, Command::Leave),
            (r#"{"cmd": "stop", "req": 8}"#, Command::Stop),
        ];
        for (line, expected) in cases {
            let request = parse_request(line);
            assert_eq!(request.command.as_ref(), Ok(&expected), "{line}");
            assert!(request.req.is_u64(), "{line}");
        }
    }

    #[test]
    fn broadcast_defaults_data_and_send() {
        let request = parse_request(r#"{"cmd": "broadcast", "req": 1, "key": "k", "version": 0}"#);
        assert_eq!(
            request.command,
            Ok(Command::Broadcast {
                key: "k".to_owned(),
                version: 0,
                data: String::new(),
                send: false,
            })
        );
    }

    #[test]
    fn invalid_commands_keep_req() {
        for line in [
            r#"{"cmd": "fly", "req": 9}"#,
            r#"{"req": 9}"#,
            r#"{"cmd": "announce", "req": 9}"#,
            r#"{"cmd": "announce", "req": 9, "addr": "nowhere"}"#,
            r#"{"cmd": "broadcast", "req": 9, "key": "k", "version": -1}"#,
        ] {
            let request = parse_request(line);
            assert!(request.command.is_err(), "{line}");
            assert_eq!(request.req, json!(9), "{line}");
        }
    }

    #[test]
    fn unreadable_line_gets_null_req() {
        for line in ["not json", "[1, 2]", "{\"req\": "] {
            let request = parse_request(line);
            assert!(request.command.is_err(), "{line}");
            assert_eq!(request.req, Value::Null, "{line}");
        }
    }

    #[tokio::test]
    async fn listen_mode_takes_the_first_connection_only() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let harness = tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await.unwrap();
            let mut lines = BufReader::new(stream).lines();
            lines.next_line().await.unwrap()
        });
        let mut channel = ControlChannel::accept(listener).await.unwrap();
        channel
            .write_reply(&json!({"type": "reply"}))
            .await
            .unwrap();
        channel.flush().await.unwrap();
        let line = harness.await.unwrap();
        assert_eq!(line.as_deref(), Some(r#"{"type":"reply"}"#));
        // The listener is closed once the control connection is accepted.
        assert!(TcpStream::connect(addr).await.is_err());
    }

    #[test]
    fn replies_carry_req_and_ok() {
        let mut fields = Map::new();
        fields.insert("added".to_owned(), Value::Bool(true));
        assert_eq!(
            reply_ok(json!(7), fields),
            json!({"type": "reply", "req": 7, "ok": true, "added": true})
        );
        assert_eq!(
            reply_error(json!(7), "nope"),
            json!({"type": "reply", "req": 7, "ok": false, "error": "nope"})
        );
    }
}
