//! Subcommands that run no cluster member: `vectors` and `oracle`. With no
//! subcommand, `rust_peer` runs one member as the peer contract describes.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::{oracle, vectors};

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
}

/// Runs `tool` and returns the process exit status: 0 on success, 1 on
/// failure, with the reason on stderr.
pub fn run(tool: Tool) -> ExitCode {
    let result = match tool {
        Tool::Vectors { out, check } => vectors::run(&out, check),
        Tool::Oracle => oracle::run().map_err(anyhow::Error::from),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("rust_peer: {err:#}");
            ExitCode::FAILURE
        }
    }
}
