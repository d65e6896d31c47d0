"""``swim-conformance bench``: parse the options, run the sections, write JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from conformance.bench import report
from conformance.bench.codec_bench import run_codec_section
from conformance.bench.core_bench import run_core_section
from conformance.bench.loss_bench import run_loss_section
from conformance.bench.machine import describe_machine, load_average
from conformance.bench.sim_bench import run_sim_section
from conformance.bench.udp_bench import (
    UdpTiming,
    ensure_swim_protocol_venv,
    run_soak_section,
    run_udp_section,
)
from conformance.errors import BuildError
from conformance.impls import project_root
from conformance.rust_build import ensure_rust_peer

SECTIONS = ("codec", "core", "sim", "loss", "udp", "soak")
IMPLEMENTATIONS = ("swim_py", "rust_peer", "swim_protocol")

# Full and quick defaults of each sized option.
_DEFAULTS: dict[str, tuple[Any, Any]] = {
    "seconds": (3.0, 0.2),
    "core_members": ("10,100,1000", "10,100"),
    "sim_sizes": ("100,1000,10000", "50,200"),
    "sim_steady_periods": (5, 2),
    "sim_max_periods": (120, 60),
    "loss_sizes": ("20,50,100", "10"),
    "loss_rates": ("0.1,0.2,0.3", "0.3"),
    "loss_seeds": (5, 1),
    "loss_window_periods": (200, 20),
    "loss_recover_periods": (120, 60),
    "udp_sizes": ("10,30,100", "5"),
    "udp_settle": (10.0, 1.0),
    "udp_window": (30.0, 3.0),
    "soak_sizes": ("100,250,500,1000,1500,2000", "20,50"),
    "soak_screen_seconds": (60.0, 5.0),
    "soak_seconds": (300.0, None),
    "soak_settle": (20.0, 2.0),
}


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid size list {text!r}: expected integers separated by commas"
        ) from None
    if not sizes or min(sizes) < 3:
        raise argparse.ArgumentTypeError(
            f"invalid size list {text!r}: every size must be at least 3"
        )
    return sizes


def _shares(text: str) -> list[float]:
    try:
        values = [float(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid list {text!r}: expected comma-separated numbers from 0 to 1"
        ) from None
    if not values or any(not 0.0 <= value <= 1.0 for value in values):
        raise argparse.ArgumentTypeError(
            f"invalid list {text!r}: expected comma-separated numbers from 0 to 1"
        )
    return values


def _names(choices: Sequence[str]) -> Any:
    def parse(text: str) -> list[str]:
        names = [part.strip() for part in text.split(",") if part.strip()]
        unknown = [name for name in names if name not in choices]
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                f"invalid list {text!r}: expected names from {', '.join(choices)}"
            )
        return names

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="swim-conformance bench",
        description=(
            "Benchmark swim_py beside foca 1.0 (rust_peer) and the PyPI package"
            " swim-protocol: codec, protocol core, in-memory simulation, UDP"
            " clusters on 127.0.0.1 and a one-process soak. Prints each figure"
            " side by side with its ratio to foca and writes every result as JSON."
            " Options left out take the full or --quick default shown."
        ),
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a short smoke run with small sizes, which checks that the harness"
        " works; its timings are not meaningful",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("bench-results.json"),
        metavar="FILE",
        help="JSON results file (default: bench-results.json)",
    )
    parser.add_argument(
        "--log-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder for the stderr of node processes (default: FILE's name"
        " with -logs, beside it)",
    )
    parser.add_argument(
        "--only",
        type=_names(SECTIONS),
        default=list(SECTIONS),
        metavar="SECTIONS",
        help=f"comma-separated sections to run (default: {','.join(SECTIONS)})",
    )
    parser.add_argument(
        "--impls",
        type=_names(IMPLEMENTATIONS),
        default=list(IMPLEMENTATIONS),
        metavar="NAMES",
        help="implementations of the udp and sim sections (default:"
        f" {','.join(IMPLEMENTATIONS)}; sim runs swim_py and rust_peer only);"
        " codec and core always compare swim_py with rust_peer",
    )
    _add_codec_core_sim_options(parser)
    _add_udp_soak_options(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    return parser


def _add_codec_core_sim_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="wall-clock seconds of each codec and core loop (default: 3, quick 0.2)",
    )
    parser.add_argument(
        "--core-members",
        type=_sizes,
        default=None,
        metavar="LIST",
        help="member counts of the core section (default: 10,100,1000; quick 10,100)",
    )
    parser.add_argument(
        "--sim-sizes",
        type=_sizes,
        default=None,
        metavar="LIST",
        help="simulated cluster sizes (default: 100,1000,10000; quick 50,200)",
    )
    parser.add_argument(
        "--sim-steady-periods",
        type=int,
        default=None,
        metavar="N",
        help="probe periods timed in the simulation's steady state (default: 5,"
        " quick 2)",
    )
    parser.add_argument(
        "--sim-max-periods",
        type=int,
        default=None,
        metavar="N",
        help="probe periods after which a simulated join or crash gives up"
        " (default: 120, quick 60)",
    )
    parser.add_argument(
        "--seed", type=int, default=1, help="seed of the simulations (default: 1)"
    )
    parser.add_argument(
        "--loss-sizes",
        type=_sizes,
        default=None,
        metavar="LIST",
        help="cluster sizes of the loss section (default: 20,50,100; quick 10)",
    )
    parser.add_argument(
        "--loss-rates",
        type=_shares,
        default=None,
        metavar="LIST",
        help="shares of datagrams dropped in the loss section, each from 0 to 1"
        " (default: 0.1,0.2,0.3; quick 0.3)",
    )
    parser.add_argument(
        "--loss-seeds",
        type=int,
        default=None,
        metavar="N",
        help="runs per size and rate in the loss section, seeds 1 to N"
        " (default: 5, quick 1)",
    )
    parser.add_argument(
        "--loss-window-periods",
        type=int,
        default=None,
        metavar="N",
        help="probe periods of packet loss (default: 200, quick 20)",
    )
    parser.add_argument(
        "--loss-recover-periods",
        type=int,
        default=None,
        metavar="N",
        help="probe periods after the loss within which the cluster must"
        " converge again (default: 120, quick 60)",
    )


def _add_udp_soak_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--udp-sizes",
        type=_sizes,
        default=None,
        metavar="LIST",
        help="UDP cluster sizes (default: 10,30,100; quick 5)",
    )
    parser.add_argument(
        "--udp-settle",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds between convergence and the CPU window (default: 10, quick 1)",
    )
    parser.add_argument(
        "--udp-window",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds of the CPU measurement window (default: 30, quick 3)",
    )
    parser.add_argument(
        "--soak-sizes",
        type=_sizes,
        default=None,
        metavar="LIST",
        help="swim_py cluster sizes to screen in one process, in increasing order"
        " (default: 100,250,500,1000,1500,2000; quick 20,50)",
    )
    parser.add_argument(
        "--soak-screen-seconds",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds each screened size runs (default: 60, quick 5)",
    )
    parser.add_argument(
        "--soak-seconds",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds of the soak of the largest screened size (default: 300;"
        " quick runs none)",
    )
    parser.add_argument(
        "--soak-settle",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds between a soak cluster's start and the start of the count"
        " of false downs (default: 20, quick 2)",
    )
    parser.add_argument(
        "--swim-protocol-nodes-per-process",
        type=int,
        default=1,
        metavar="N",
        help="swim-protocol nodes in each host process of the udp section;"
        " 0 puts all of them in one process (default: 1)",
    )
    parser.add_argument(
        "--swim-protocol-venv",
        type=Path,
        default=Path.home() / ".cache" / "swim_py-bench" / "swim-protocol-venv",
        metavar="DIR",
        help="virtual environment for swim-protocol, created with pip when"
        " missing (default: ~/.cache/swim_py-bench/swim-protocol-venv)",
    )


def _apply_defaults(args: argparse.Namespace) -> None:
    column = 1 if args.quick else 0
    for name, defaults in _DEFAULTS.items():
        if getattr(args, name) is None:
            value = defaults[column]
            if name.endswith("_sizes") or name == "core_members":
                value = _sizes(value)
            elif name == "loss_rates":
                value = _shares(value)
            setattr(args, name, value)


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _has_errors(value: Any) -> bool:
    if isinstance(value, dict):
        return "error" in value or any(_has_errors(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_errors(item) for item in value)
    return False


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the selected sections and return the results document."""
    root = project_root()
    log_dir: Path = args.log_dir or args.out.with_name(args.out.stem + "-logs")
    log_dir = log_dir.resolve()
    log_dir.mkdir(parents=True, exist_ok=True)
    # Node hosts run with the log folder as their working directory, so that
    # "python -m" puts no source tree first on sys.path and swim_py comes
    # from wherever this process imports it (PYTHONPATH or the install).
    document: dict[str, Any] = {
        "command": " ".join(["swim-conformance", "bench", *args.argv]),
        "quick": args.quick,
        "machine": describe_machine(),
        "sections": {},
    }
    sections = document["sections"]

    rust_peer: Path | None = None
    try:
        rust_peer = ensure_rust_peer(log_path=log_dir / "rust_peer-build.log")
    except BuildError as error:
        _progress(f"rust_peer is unavailable, foca figures are left out: {error}")
        document["rust_peer_error"] = str(error)

    def record(name: str, started: float, value: dict[str, Any]) -> None:
        value["wall_seconds"] = time.monotonic() - started
        value["load_average_after"] = load_average()
        sections[name] = value

    if "codec" in args.only:
        _progress("codec")
        started = time.monotonic()
        vectors = root / "tests" / "vectors" / "foca_vectors.json"
        record("codec", started, run_codec_section(vectors, rust_peer, args.seconds))
    if "core" in args.only:
        _progress(f"core: {args.core_members} members")
        started = time.monotonic()
        record(
            "core",
            started,
            run_core_section(args.core_members, rust_peer, args.seconds),
        )
    if "sim" in args.only:
        _progress(f"sim: {args.sim_sizes} nodes")
        started = time.monotonic()
        record(
            "sim",
            started,
            run_sim_section(
                args.sim_sizes,
                rust_peer if "rust_peer" in args.impls else None,
                seed=args.seed,
                steady_periods=args.sim_steady_periods,
                max_periods=args.sim_max_periods,
                rust_timeout=3600,
            ),
        )
    if "loss" in args.only:
        _progress(f"loss: {args.loss_sizes} nodes, loss {args.loss_rates}")
        started = time.monotonic()
        record(
            "loss",
            started,
            run_loss_section(
                args.loss_sizes,
                args.loss_rates,
                args.loss_seeds,
                rust_peer if "rust_peer" in args.impls else None,
                window_periods=args.loss_window_periods,
                recover_periods=args.loss_recover_periods,
                rust_timeout=3600,
            ),
        )
    if "udp" in args.only:
        started = time.monotonic()
        swim_protocol_python: Path | None = None
        udp_errors: dict[str, str] = {}
        if "swim_protocol" in args.impls:
            try:
                swim_protocol_python = ensure_swim_protocol_venv(
                    args.swim_protocol_venv
                )
            except (RuntimeError, OSError) as error:
                _progress(f"swim-protocol is unavailable: {error}")
                udp_errors["swim_protocol"] = str(error)
        timing = UdpTiming(
            settle=args.udp_settle, window=args.udp_window, detect_extra=30
        )
        udp = asyncio.run(
            run_udp_section(
                args.udp_sizes,
                args.impls,
                rust_peer=rust_peer,
                swim_protocol_python=swim_protocol_python,
                swim_protocol_nodes_per_process=(
                    args.swim_protocol_nodes_per_process or None
                ),
                timing=timing,
                log_dir=log_dir,
                cwd=log_dir,
                progress=_progress,
            )
        )
        if udp_errors:
            udp["setup_errors"] = udp_errors
        record("udp", started, udp)
    if "soak" in args.only:
        started = time.monotonic()
        record(
            "soak",
            started,
            asyncio.run(
                run_soak_section(
                    args.soak_sizes,
                    screen_seconds=args.soak_screen_seconds,
                    soak_seconds=args.soak_seconds,
                    settle=args.soak_settle,
                    log_dir=log_dir,
                    cwd=log_dir,
                    progress=_progress,
                )
            ),
        )
    document["machine"]["load_average_at_end"] = load_average()
    return document


def main(argv: Sequence[str]) -> int:
    """Run ``swim-conformance bench`` with ``argv`` and return the exit status.

    Returns 1 when any figure could not be measured (its result has an
    ``error`` entry), and 0 otherwise.
    """
    args = build_parser().parse_args(argv)
    args.argv = list(argv)
    _apply_defaults(args)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    document = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    for line in report.render(document):
        print(line)
    print(f"\nresults: {args.out}")
    if _has_errors(document["sections"]):
        print("error: some figures could not be measured, see 'error' in the results")
        return 1
    return 0
