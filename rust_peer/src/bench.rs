//! The `tool bench-codec` and `tool bench-core` subcommands: in-process
//! loops over rust_peer's codec and foca's `handle_data`, for
//! `swim-conformance bench`, which runs swim_py on the same bytes.
//!
//! Each prints one JSON object on stdout. Rates are per second of this
//! process's CPU time, read from `/proc/self/stat`, and `wall_seconds` is
//! given beside it so that a loaded machine shows as a gap between the two.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use foca::{Config, Foca, Member, Notification, Runtime, Timer};
use rand::rngs::StdRng;
use rand::SeedableRng as _;
use serde_json::{json, Value};

use crate::codec::ProtoCodec;
use crate::datagram;
use crate::datagram_json::{hex_from_json, identity_from_json};
use crate::identity::NodeIdentity;

/// Clock ticks per second in `/proc/PID/stat`: Linux reports CPU times in
/// USER_HZ, which is 100 on every mainstream architecture.
const USER_HZ: f64 = 100.0;

/// Returns the user plus system CPU time of this process in seconds, with
/// the 10 ms resolution of `/proc/self/stat`.
pub fn process_cpu_seconds() -> anyhow::Result<f64> {
    let stat = fs::read_to_string("/proc/self/stat").context("failed to read /proc/self/stat")?;
    // The command name may contain spaces, so the fields are counted from
    // the closing parenthesis: utime and stime are fields 14 and 15.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("unexpected /proc/self/stat format")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| -> anyhow::Result<f64> {
        let text = fields
            .get(index)
            .context("unexpected /proc/self/stat format")?;
        Ok(text.parse::<u64>().context("invalid tick count")? as f64)
    };
    // After ")" the first field is the state (field 3), so field N is at N - 3.
    Ok((ticks(14 - 3)? + ticks(15 - 3)?) / USER_HZ)
}

/// Measures CPU and wall time of one benchmark loop.
struct Stopwatch {
    cpu_start: f64,
    wall_start: Instant,
}

impl Stopwatch {
    fn start() -> anyhow::Result<Self> {
        Ok(Self {
            cpu_start: process_cpu_seconds()?,
            wall_start: Instant::now(),
        })
    }

    /// Returns `(cpu_seconds, wall_seconds)` since `start`.
    fn elapsed(&self) -> anyhow::Result<(f64, f64)> {
        Ok((
            process_cpu_seconds()? - self.cpu_start,
            self.wall_start.elapsed().as_secs_f64(),
        ))
    }
}

/// Repeats `pass` until `min_seconds` of wall time have passed and returns
/// the number of items it handled, with the CPU and wall seconds.
fn run_timed(
    min_seconds: f64,
    mut pass: impl FnMut() -> anyhow::Result<u64>,
) -> anyhow::Result<Value> {
    let budget = Duration::from_secs_f64(min_seconds);
    let watch = Stopwatch::start()?;
    let mut items = 0_u64;
    loop {
        items += pass()?;
        if watch.wall_start.elapsed() >= budget {
            break;
        }
    }
    let (cpu, wall) = watch.elapsed()?;
    Ok(json!({
        "items": items,
        "cpu_seconds": cpu,
        "wall_seconds": wall,
        "per_cpu_second": if cpu > 0.0 { items as f64 / cpu } else { 0.0 },
    }))
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text =
        fs::read_to_string(path).with_context(|| format!("failed to read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("invalid JSON in {}", path.display()))
}

/// Decodes and re-encodes every golden vector in a loop for `seconds` each.
pub fn bench_codec(vectors: &Path, seconds: f64) -> anyhow::Result<()> {
    let file = read_json(vectors)?;
    let entries = file["vectors"]
        .as_array()
        .context("the vectors file has no \"vectors\" array")?;
    let mut datagrams = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        datagrams.push(
            hex_from_json(&entry["hex"], &format!("vectors[{index}].hex"))
                .map_err(anyhow::Error::msg)?,
        );
    }
    let decoded = datagrams
        .iter()
        .map(|data| datagram::decode(data, None))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| anyhow::anyhow!("a golden vector does not decode: {err}"))?;

    let decode = run_timed(seconds, || {
        for data in &datagrams {
            let value = datagram::decode(std::hint::black_box(data), None)
                .map_err(|err| anyhow::anyhow!("decode failed: {err}"))?;
            std::hint::black_box(value);
        }
        Ok(datagrams.len() as u64)
    })?;
    let encode = run_timed(seconds, || {
        for value in &decoded {
            let data = datagram::encode(std::hint::black_box(value))
                .map_err(|err| anyhow::anyhow!("encode failed: {err}"))?;
            std::hint::black_box(data);
        }
        Ok(decoded.len() as u64)
    })?;
    let report = json!({
        "implementation": "rust_peer",
        "vectors": datagrams.len(),
        "decode": decode,
        "encode": encode,
    });
    println!("{report}");
    Ok(())
}

/// A runtime that drops every output, so that only foca's own work counts.
struct DiscardRuntime {
    sends: u64,
}

impl Runtime<NodeIdentity> for DiscardRuntime {
    fn notify(&mut self, notification: Notification<'_, NodeIdentity>) {
        std::hint::black_box(notification);
    }

    fn send_to(&mut self, _to: NodeIdentity, data: &[u8]) {
        std::hint::black_box(data);
        self.sends += 1;
    }

    fn submit_after(&mut self, event: Timer<NodeIdentity>, _after: Duration) {
        std::hint::black_box(event);
    }
}

/// Feeds the datagram stream of `input` to one foca instance for `seconds`.
///
/// `input` is the JSON file that `swim-conformance bench` writes: the
/// receiver's identity, its members, `max_packet_size` and the
/// datagrams as hex. Every member is applied as Alive at incarnation 0
/// without broadcasting, as swim_py's side of the benchmark does.
pub fn bench_core(input: &Path, seconds: f64) -> anyhow::Result<()> {
    let file = read_json(input)?;
    let receiver = identity_from_json(&file["receiver"], "receiver").map_err(anyhow::Error::msg)?;
    let members = file["members"]
        .as_array()
        .context("the input has no \"members\" array")?
        .iter()
        .enumerate()
        .map(|(index, value)| identity_from_json(value, &format!("members[{index}]")))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let datagrams = file["datagrams"]
        .as_array()
        .context("the input has no \"datagrams\" array")?
        .iter()
        .enumerate()
        .map(|(index, value)| hex_from_json(value, &format!("datagrams[{index}]")))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let max_packet_size = file["max_packet_size"]
        .as_u64()
        .context("the input has no integer \"max_packet_size\"")?;

    let mut config = Config::simple();
    config.max_packet_size = usize::try_from(max_packet_size)
        .ok()
        .and_then(std::num::NonZeroUsize::new)
        .context("max_packet_size must be a positive integer")?;
    // Foca::new rejects every custom broadcast item, like swim_py's default
    // handler. The stream carries none.
    let mut foca = Foca::new(receiver, config, StdRng::seed_from_u64(1), ProtoCodec);
    let mut runtime = DiscardRuntime { sends: 0 };
    foca.apply_many(members.into_iter().map(Member::alive), false, &mut runtime)
        .map_err(|err| anyhow::anyhow!("apply_many failed: {err}"))?;
    let known = foca.iter_members().count();

    let mut errors = 0_u64;
    let result = run_timed(seconds, || {
        for data in &datagrams {
            if foca.handle_data(data, &mut runtime).is_err() {
                errors += 1;
            }
        }
        Ok(datagrams.len() as u64)
    })?;
    if errors > 0 {
        bail!("{errors} datagrams were rejected: the stream must be valid");
    }
    let report = json!({
        "implementation": "rust_peer",
        "members": known,
        "stream": datagrams.len(),
        "replies": runtime.sends,
        "handle_data": result,
    });
    println!("{report}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_cpu_time_is_readable_and_grows() {
        let before = process_cpu_seconds().unwrap();
        let mut total = 0_u64;
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(50) {
            total = total.wrapping_add(std::hint::black_box(1));
        }
        std::hint::black_box(total);
        assert!(process_cpu_seconds().unwrap() >= before);
    }

    #[test]
    fn run_timed_counts_items_of_every_pass() {
        let mut passes = 0;
        let result = run_timed(0.0, || {
            passes += 1;
            Ok(3)
        })
        .unwrap();
        assert_eq!(passes, 1);
        assert_eq!(result["items"], 3);
    }
}
