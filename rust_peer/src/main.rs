//! `rust_peer`: one foca SWIM member over UDP, driven by the conformance
//! harness over a JSON-lines TCP control connection.
//!
//! The `vectors` and `oracle` subcommands (see `tools.rs`) run no member:
//! they write golden datagrams and serve codec requests for swim_py's tests.
//!
//! Flags follow the peer contract (`conformance/PEER_CONTRACT.md`). An invalid
//! flag or value exits with status 2 before anything is bound; a start-up
//! failure after that exits with status 1.

#![forbid(unsafe_code)]

mod bench;
mod broadcast;
mod codec;
mod config;
mod control;
mod datagram;
mod datagram_json;
mod driver;
mod identity;
mod oracle;
mod sim;
mod stats;
mod timers;
mod tools;
mod vectors;

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::str::FromStr;

use clap::{CommandFactory as _, Parser};
use tracing::error;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::EnvFilter;

use crate::config::{Override, Preset};

/// This crate's version and the foca version that `Cargo.lock` pins, as the
/// ready line and `--version` report them.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (foca ",
    env!("FOCA_VERSION"),
    ")"
);

#[derive(Debug, Parser)]
#[command(name = "rust_peer", version = VERSION)]
#[command(
    about = "Runs one foca SWIM member over UDP, driven over a JSON-lines control connection"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Args {
    /// A tool to run instead of a cluster member.
    #[command(subcommand)]
    tool: Option<tools::Tool>,

    /// UDP address to bind; port 0 lets the OS choose.
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:0")]
    bind: SocketAddr,

    /// Address put in this node's identity [default: the bound address].
    #[arg(long, value_name = "IP:PORT")]
    advertise: Option<SocketAddr>,

    /// The identity's opaque id, as hex.
    #[arg(long, value_name = "HEX", default_value = "")]
    id: HexBytes,

    /// The identity's renewal counter.
    #[arg(long, value_name = "U64", default_value_t = 0)]
    renewal: u64,

    /// Config preset: simple, lan:N or wan:N, with N the expected cluster size.
    #[arg(long, value_name = "PRESET", default_value = "simple")]
    config: Preset,

    /// Overrides one config field after the preset; repeatable. Durations
    /// are in milliseconds, periodic tasks are off or FREQUENCY_MS:NUM_MEMBERS.
    #[arg(long = "set", value_name = "FIELD=VALUE")]
    set: Vec<Override>,

    /// Member to announce to at start and until connected; repeatable.
    #[arg(long = "seed", value_name = "IP:PORT")]
    seeds: Vec<SocketAddr>,

    /// The harness's TCP listener, which this node connects to. Without it
    /// or --control-listen the node runs standalone and logs its ready line
    /// and events to stderr.
    #[arg(long, value_name = "IP:PORT")]
    control: Option<SocketAddr>,

    /// TCP address to listen on for the harness's one control connection,
    /// instead of connecting to it; for nodes in containers.
    #[arg(long, value_name = "IP:PORT", conflicts_with = "control")]
    control_listen: Option<SocketAddr>,

    /// Seed for the random generator [default: from the OS].
    #[arg(long, value_name = "U64")]
    rng_seed: Option<u64>,
}

/// Bytes given on the command line as hex.
#[derive(Debug, Clone)]
struct HexBytes(Vec<u8>);

impl FromStr for HexBytes {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        control::from_hex(text).map(Self)
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(tool) = args.tool {
        return tools::run(tool);
    }
    let config = match config::build(args.config, &args.set) {
        Ok(config) => config,
        Err(message) => Args::command()
            .error(clap::error::ErrorKind::ValueValidation, message)
            .exit(),
    };

    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::builder()
                .with_default_directive(LevelFilter::INFO.into())
                .from_env_lossy(),
        )
        .init();

    let settings = driver::Settings {
        bind: args.bind,
        advertise: args.advertise,
        id: args.id.0,
        renewal: args.renewal,
        config,
        seeds: args.seeds,
        control: match (args.control, args.control_listen) {
            (Some(addr), _) => control::ControlMode::Connect(addr),
            (None, Some(addr)) => control::ControlMode::Listen(addr),
            (None, None) => control::ControlMode::Standalone,
        },
        rng_seed: args.rng_seed,
    };

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            error!(error = %err, "failed to start the tokio runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(driver::run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            error!("{err:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn cli_parses_contract_flags() {
        let args = Args::try_parse_from([
            "rust_peer",
            "--bind",
            "127.0.0.1:0",
            "--id",
            "6e31",
            "--renewal",
            "3",
            "--config",
            "lan:5",
            "--set",
            "probe_rtt_ms=200",
            "--set",
            "periodic_gossip=off",
            "--seed",
            "127.0.0.1:9000",
            "--seed",
            "[::1]:9001",
            "--control",
            "127.0.0.1:7000",
            "--rng-seed",
            "42",
        ])
        .expect("valid flags parse");
        assert_eq!(args.id.0, b"n1");
        assert_eq!(args.renewal, 3);
        assert_eq!(args.set.len(), 2);
        assert_eq!(args.seeds.len(), 2);
        assert_eq!(args.rng_seed, Some(42));
        assert_eq!(args.config.to_string(), "lan:5");
    }

    #[test]
    fn cli_control_is_optional() {
        let args = Args::try_parse_from(["rust_peer"]).expect("no flag is required");
        assert_eq!(args.control, None);
        assert_eq!(args.bind, "127.0.0.1:0".parse().unwrap());
        assert!(args.id.0.is_empty());
        assert_eq!(args.config, Preset::Simple);
    }

    #[test]
    fn cli_control_and_control_listen_conflict() {
        let args = Args::try_parse_from(["rust_peer", "--control-listen", "0.0.0.0:7000"])
            .expect("--control-listen parses");
        assert_eq!(args.control_listen, Some("0.0.0.0:7000".parse().unwrap()));
        let err = Args::try_parse_from([
            "rust_peer",
            "--control",
            "127.0.0.1:7000",
            "--control-listen",
            "0.0.0.0:7000",
        ])
        .expect_err("the two control flags conflict");
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn cli_parses_tool_subcommands() {
        let args = Args::try_parse_from(["rust_peer"]).expect("no flag is required");
        assert!(args.tool.is_none());

        let args = Args::try_parse_from(["rust_peer", "vectors", "--out", "dir", "--check"])
            .expect("vectors subcommand parses");
        assert!(matches!(
            args.tool,
            Some(tools::Tool::Vectors { ref out, check: true }) if out.as_os_str() == "dir"
        ));

        let args = Args::try_parse_from(["rust_peer", "oracle"]).expect("oracle parses");
        assert!(matches!(args.tool, Some(tools::Tool::Oracle)));
    }

    #[test]
    fn cli_rejects_member_flags_with_tools() {
        let err = Args::try_parse_from(["rust_peer", "--bind", "127.0.0.1:0", "oracle"])
            .expect_err("member flags and a tool conflict");
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn cli_rejects_bad_values_with_status_2() {
        for bad in [
            ["--id", "xyz"],
            ["--config", "lan:0"],
            ["--set", "max_transmissions=0"],
            ["--renewal", "-1"],
            ["--seed", "localhost:80"],
        ] {
            let mut argv = vec!["rust_peer", "--control", "127.0.0.1:1"];
            argv.extend(bad);
            let err = Args::try_parse_from(&argv).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
    }
}
