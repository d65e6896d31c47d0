//! Subcommands that run no cluster member: `vectors`, `oracle` and the
//! benchmarks under `tool`. With no subcommand, `rust_peer` runs one member
//! as the peer contract describes.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::{bench, oracle, sim, vectors};

#[derive(Debug, clap::Subcommand)]
pub enum Tool {
    /// Writes golden datagrams from foca's sending path to DIR/foca_vectors.json.
    Vectors {
        /// Folder of the vectors file. The checked-in one is ../tests/vectors.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,

        /// Compares DIR/foca_vectors.json with a fresh run instead of writing
        /// it, and exits with status 1 when they differ.
        #[arg(long)]
        check: bool,
    },
    /// Decodes and encodes headers, members and datagrams for JSON-lines
    /// requests on stdin, one reply line each on stdout.
    Oracle,
    /// Benchmarks for `swim-conformance bench`; each prints one JSON object.
    #[command(name = "tool", subcommand)]
    Bench(BenchTool),
}

#[derive(Debug, clap::Subcommand)]
pub enum BenchTool {
    /// Decodes and encodes every golden vector in a loop.
    BenchCodec {
        /// The golden vectors file, tests/vectors/foca_vectors.json.
        #[arg(long, value_name = "FILE")]
        vectors: PathBuf,
        /// Wall-clock seconds for each of the decode and encode loops.
        #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
        seconds: f64,
    },
    /// Feeds a stream of datagrams to one foca instance in a loop.
    BenchCore {
        /// JSON file with the receiver, its members and the datagrams.
        #[arg(long, value_name = "FILE")]
        input: PathBuf,
        /// Wall-clock seconds of the loop.
        #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
        seconds: f64,
    },
    /// Runs N foca instances on an in-memory network in virtual time.
    Sim {
        /// Number of nodes before the joiner.
        #[arg(long, value_name = "N")]
        nodes: usize,
        /// Seed of every random generator.
        #[arg(long, value_name = "U64", default_value_t = 1)]
        seed: u64,
        /// Probe periods timed after the warm-up.
        #[arg(long, value_name = "N", default_value_t = 5)]
        steady_periods: u32,
        /// Probe periods after which the join and crash steps give up.
        #[arg(long, value_name = "N", default_value_t = 120)]
        max_periods: u32,
    },
    /// Runs N foca instances in virtual time with a share of datagrams
    /// dropped, and counts the live members declared down.
    SimLoss {
        /// Number of nodes.
        #[arg(long, value_name = "N")]
        nodes: usize,
        /// Seed of every random generator.
        #[arg(long, value_name = "U64", default_value_t = 1)]
        seed: u64,
        /// Share of datagrams dropped, from 0 to 1.
        #[arg(long, value_name = "SHARE")]
        loss: f64,
        /// Probe periods of loss.
        #[arg(long, value_name = "N", default_value_t = 100)]
        window_periods: u32,
        /// Probe periods after the loss within which the cluster must
        /// converge again.
        #[arg(long, value_name = "N", default_value_t = 60)]
        recover_periods: u32,
    },
}

/// Runs `tool` and returns the process exit status: 0 on success, 1 on
/// failure, with the reason on stderr.
pub fn run(tool: Tool) -> ExitCode {
    let result = match tool {
        Tool::Vectors { out, check } => vectors::run(&out, check),
        Tool::Oracle => oracle::run().map_err(anyhow::Error::from),
        Tool::Bench(BenchTool::BenchCodec { vectors, seconds }) => {
            bench::bench_codec(&vectors, seconds)
        }
        Tool::Bench(BenchTool::BenchCore { input, seconds }) => bench::bench_core(&input, seconds),
        Tool::Bench(BenchTool::Sim {
            nodes,
            seed,
            steady_periods,
            max_periods,
        }) => sim::run(&sim::SimSettings {
            nodes,
            seed,
            steady_periods,
            max_periods,
        }),
        Tool::Bench(BenchTool::SimLoss {
            nodes,
            seed,
            loss,
            window_periods,
            recover_periods,
        }) => sim::run_loss(&sim::LossSettings {
            nodes,
            seed,
            loss,
            window_periods,
            recover_periods,
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("rust_peer: {err:#}");
            ExitCode::FAILURE
        }
    }
}
