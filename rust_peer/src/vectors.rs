//! The `vectors` subcommand: golden datagrams from foca's real sending path.
//!
//! Every vector is a datagram that a real `Foca` instance passed to its
//! runtime. Each instance runs with `ProtoCodec`, `NodeIdentity` and the
//! keyed broadcast handler of `rust_peer`, and reacts to real inputs:
//! `handle_data` with datagrams from other instances or crafted ones,
//! `handle_timer`, `announce`, `gossip`, `broadcast`, `add_broadcast`,
//! `leave_cluster` and `change_identity`. Every RNG has a fixed seed, so a
//! run always writes the same file.
//!
//! The expected structure comes from foca's own types: the header is the one
//! in foca's `DataSent` notification for that datagram. The updates and
//! custom broadcast items are read back from the bytes, because foca keeps
//! them encoded in its backlogs.

use std::fs;
use std::path::Path;

use anyhow::{bail, Context as _};
use serde_json::{json, Value};

use self::harness::Recorder;

mod harness;
mod scenarios;

/// The file that `vectors --out DIR` writes inside DIR.
pub const FILE_NAME: &str = "foca_vectors.json";

/// The command that rewrites the checked-in file, as recorded in it.
pub const REGENERATE_COMMAND: &str =
    "cd rust_peer && cargo run --release --locked -- vectors --out ../tests/vectors";

/// Writes `DIR/foca_vectors.json`, or with `check` compares it with a fresh
/// run and fails naming every vector that differs.
pub fn run(out: &Path, check: bool) -> anyhow::Result<()> {
    let text = render()?;
    let path = out.join(FILE_NAME);
    if check {
        let existing = fs::read_to_string(&path)
            .with_context(|| format!("failed to read {}", path.display()))?;
        if existing != text {
            bail!(
                "{} differs from a fresh run ({}); regenerate it with `{REGENERATE_COMMAND}`",
                path.display(),
                describe_difference(&existing, &text)
            );
        }
        eprintln!("{} matches a fresh run", path.display());
        return Ok(());
    }
    fs::create_dir_all(out).with_context(|| format!("failed to create {}", out.display()))?;
    fs::write(&path, &text).with_context(|| format!("failed to write {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// Builds the whole file: pretty-printed JSON with a final newline.
pub fn render() -> anyhow::Result<String> {
    let vectors = generate()?;
    let file = json!({
        "format": "swim_py datagram vectors, version 1",
        // Only the foca version: a rust_peer release alone changes no byte.
        "generator": format!("foca {} with rust_peer's ProtoCodec", env!("FOCA_VERSION")),
        "regenerate": REGENERATE_COMMAND,
        "vectors": vectors,
    });
    let mut text = serde_json::to_string_pretty(&file)?;
    text.push('\n');
    Ok(text)
}

/// Names the vectors that were added, removed or changed between two files.
fn describe_difference(existing: &str, fresh: &str) -> String {
    let by_name = |text: &str| -> Option<Vec<(String, Value)>> {
        let file: Value = serde_json::from_str(text).ok()?;
        let vectors = file.get("vectors")?.as_array()?;
        Some(
            vectors
                .iter()
                .map(|vector| {
                    (
                        vector["name"].as_str().unwrap_or("").to_owned(),
                        vector.clone(),
                    )
                })
                .collect(),
        )
    };
    let (Some(old), Some(new)) = (by_name(existing), by_name(fresh)) else {
        return "the checked-in file is not a vectors file".to_owned();
    };
    let mut changes = Vec::new();
    for (name, vector) in &new {
        match old.iter().find(|(old_name, _)| old_name == name) {
            None => changes.push(format!("{name} is new")),
            Some((_, old_vector)) if old_vector != vector => {
                changes.push(format!("{name} changed"))
            }
            Some(_) => {}
        }
    }
    for (name, _) in &old {
        if !new.iter().any(|(new_name, _)| new_name == name) {
            changes.push(format!("{name} is gone"));
        }
    }
    if changes.is_empty() {
        return "only the file's formatting or metadata differs".to_owned();
    }
    changes.join(", ")
}

/// Runs every scenario and returns the vectors in a fixed order.
pub fn generate() -> anyhow::Result<Vec<Value>> {
    let mut recorder = Recorder::default();
    scenarios::record_all(&mut recorder)?;
    Ok(recorder.vectors)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::path::PathBuf;

    use super::*;

    /// Returns the folder of the checked-in vectors file.
    fn checked_in() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors")
    }

    #[test]
    fn generation_is_deterministic() {
        assert_eq!(render().unwrap(), render().unwrap());
    }

    #[test]
    fn checked_in_vectors_match_fresh_run() {
        let path = checked_in().join(FILE_NAME);
        let existing = fs::read_to_string(&path).expect("tests/vectors/foca_vectors.json exists");
        let fresh = render().unwrap();
        assert!(
            existing == fresh,
            "{} is stale ({}): run `{REGENERATE_COMMAND}`",
            path.display(),
            describe_difference(&existing, &fresh)
        );
    }

    #[test]
    fn covers_every_message_type() {
        let vectors = generate().unwrap();
        let types: HashSet<&str> = vectors
            .iter()
            .filter_map(|vector| vector["datagram"]["header"]["message"]["type"].as_str())
            .collect();
        for name in [
            "ping",
            "ack",
            "ping_req",
            "indirect_ping",
            "indirect_ack",
            "forwarded_ack",
            "announce",
            "feed",
            "gossip",
            "broadcast",
            "turn_undead",
        ] {
            assert!(types.contains(name), "no vector for {name}");
        }
    }

    #[test]
    fn difference_names_changed_vectors() {
        let old = r#"{"vectors": [{"name": "a", "hex": "00"}, {"name": "b"}]}"#;
        let new = r#"{"vectors": [{"name": "a", "hex": "01"}, {"name": "c"}]}"#;
        assert_eq!(
            describe_difference(old, new),
            "a changed, c is new, b is gone"
        );
    }
}
