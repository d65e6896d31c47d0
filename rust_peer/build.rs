//! Generates the protobuf types from `../proto/swim.proto` and records the
//! foca version from `Cargo.lock`.
//!
//! protox parses the schema in pure Rust, so building needs no `protoc`.

use std::error::Error;
use std::{env, fs, path::Path};

const PROTO_DIR: &str = "../proto";
const PROTO_FILE: &str = "../proto/swim.proto";

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed={PROTO_FILE}");
    let descriptors = protox::compile([PROTO_FILE], [PROTO_DIR])?;
    prost_build::Config::new().compile_fds(descriptors)?;

    emit_foca_version()?;
    Ok(())
}

/// Sets `FOCA_VERSION` for the crate to the foca version that `Cargo.lock`
/// resolved, so the ready line reports the version actually built.
fn emit_foca_version() -> Result<(), Box<dyn Error>> {
    let lock_path = Path::new(&env::var("CARGO_MANIFEST_DIR")?).join("Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock_path.display());
    let lock = fs::read_to_string(&lock_path)
        .map_err(|err| format!("failed to read {}: {err}", lock_path.display()))?;

    let version = foca_version_in_lock(&lock)
        .ok_or_else(|| format!("no foca package found in {}", lock_path.display()))?;
    println!("cargo:rustc-env=FOCA_VERSION={version}");
    Ok(())
}

/// Finds the `version` line that follows `name = "foca"` in a Cargo.lock.
fn foca_version_in_lock(lock: &str) -> Option<&str> {
    let mut lines = lock.lines().map(str::trim);
    lines.find(|line| *line == "name = \"foca\"")?;
    let version_line = lines.next()?;
    version_line.strip_prefix("version = \"")?.strip_suffix('"')
}
