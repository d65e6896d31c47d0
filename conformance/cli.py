"""Command line: ``swim-conformance run`` and ``swim-conformance list``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from conformance.cluster import Timing
from conformance.config import parse_set_option
from conformance.errors import BuildError, ScenarioError
from conformance.harness import RunOptions, RunResult, check_mixes, run_suite
from conformance.impls import build_registry, mix_implementations
from conformance.process import kill_all_sync
from conformance.report import build_report, write_report
from conformance.rust_build import ensure_rust_peer
from conformance.scenario import Scenario, load_scenarios

DEFAULT_MIXES = "python,rust,mixed"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="swim-conformance",
        description=(
            "Run SWIM conformance scenarios on clusters of swim_py (swim-node) and "
            "foca (rust_peer) processes on 127.0.0.1, and write a report."
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "run",
        help="run scenarios and write report.json and report.md",
        description=(
            "Build rust_peer if it is missing or stale, run each scenario in each mix, "
            "print one line per run, then the result matrix. Exits 1 if any run failed."
        ),
    )
    run.add_argument(
        "--report-dir",
        type=Path,
        default=Path("conformance-report"),
        metavar="DIR",
        help="folder for report.json, report.md and the per-run node logs and "
        "timelines (default: ./conformance-report)",
    )
    run.add_argument(
        "--scenario",
        action="extend",
        nargs="+",
        default=[],
        metavar="NAME",
        help="scenario names to run, in this order (default: every scenario file)",
    )
    run.add_argument(
        "--mix",
        action="append",
        default=[],
        metavar="MIXES",
        help="comma-separated mixes: an implementation name puts every node on it, "
        "A+B alternates A and B from n0, mixed means python+rust "
        f"(default: {DEFAULT_MIXES})",
    )
    run.add_argument(
        "--runtime",
        choices=["process"],
        default="process",
        help="how nodes run: 'process' starts each node as a local process (the only "
        "runtime so far)",
    )
    run.add_argument(
        "--impl",
        action="append",
        default=[],
        metavar="NAME=COMMAND",
        help="add an implementation or replace python/rust: COMMAND is split like a "
        "shell line and gets the contract flags appended; replacing rust skips the "
        "cargo build",
    )
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override one node config field in every scenario, after the scenario's "
        "own overrides; durations in milliseconds, e.g. probe_period_ms=500",
    )
    run.add_argument(
        "--seed",
        default=None,
        help="seed from which each node's --rng-seed is derived (default: random; "
        "the report records it, so the nodes' random choices can be repeated)",
    )
    run.add_argument(
        "--slack-ms",
        type=int,
        default=None,
        metavar="MS",
        help="value in milliseconds of the 'slack' term that every bound adds, "
        "replacing each scenario's slack_ms; raise it on a slow machine",
    )
    run.add_argument(
        "--startup-timeout",
        type=float,
        default=Timing.startup,
        metavar="SECONDS",
        help="seconds a node process gets to send its ready line "
        f"(default: {Timing.startup:g})",
    )
    run.add_argument(
        "--reply-timeout",
        type=float,
        default=Timing.reply,
        metavar="SECONDS",
        help="seconds a node gets to reply to a control command "
        f"(default: {Timing.reply:g})",
    )
    run.add_argument(
        "--scenario-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="load scenario files (*.yaml) from DIR instead of the shipped ones",
    )
    run.add_argument(
        "-v", "--verbose", action="store_true", help="log node starts and kills"
    )

    commands.add_parser(
        "codec",
        help=(
            "check the working tree's schema and both codecs against each other"
            " and the golden vectors (see `swim-conformance codec --help`)"
        ),
        add_help=False,
    )

    listing = commands.add_parser("list", help="list the scenarios and implementations")
    listing.add_argument(
        "--scenario-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder of scenario files",
    )
    listing.add_argument(
        "--impl", action="append", default=[], metavar="NAME=COMMAND", help="as for run"
    )
    return parser


def _select(scenarios: dict[str, Scenario], names: Sequence[str]) -> list[Scenario]:
    if not names:
        return list(scenarios.values())
    unknown = [name for name in names if name not in scenarios]
    if unknown:
        raise ScenarioError(
            f"unknown scenario(s) {', '.join(unknown)}; "
            f"available: {', '.join(scenarios)}"
        )
    return [scenarios[name] for name in names]


def _parse_mixes(values: Sequence[str]) -> list[str]:
    mixes = [
        mix.strip() for value in (values or [DEFAULT_MIXES]) for mix in value.split(",")
    ]
    mixes = [mix for mix in mixes if mix]
    if not mixes:
        raise ScenarioError("--mix lists no mix")
    return list(dict.fromkeys(mixes))


def _progress(total: int) -> tuple[list[RunResult], Callable[[RunResult], None]]:
    results: list[RunResult] = []

    def report(result: RunResult) -> None:
        results.append(result)
        status = "PASS" if result.passed else "FAIL"
        print(
            f"[{len(results):>2}/{total}] {result.scenario:<22} {result.mix:<12} "
            f"{status}  {result.duration_seconds:6.1f} s",
            flush=True,
        )
        if result.error:
            first = result.error.splitlines()[0]
            print(f"        {first[:300]}", flush=True)

    return results, report


def _print_matrix(results: Sequence[RunResult]) -> None:
    scenarios = list(dict.fromkeys(result.scenario for result in results))
    mixes = list(dict.fromkeys(result.mix for result in results))
    by_key = {(result.scenario, result.mix): result for result in results}
    width = max(len(name) for name in scenarios) + 2
    print()
    print("".ljust(width) + "".join(mix.ljust(14) for mix in mixes))
    for scenario in scenarios:
        cells = []
        for mix in mixes:
            result = by_key.get((scenario, mix))
            if result is None:
                cell = "-"
            else:
                cell = "pass" if result.passed else "FAIL"
            cells.append(cell.ljust(14))
        print(scenario.ljust(width) + "".join(cells))


def _command_run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    registry = build_registry(args.impl)
    scenarios = _select(load_scenarios(args.scenario_dir), args.scenario)
    mixes = _parse_mixes(args.mix)
    check_mixes(mixes, scenarios, registry)
    overrides = tuple(parse_set_option(text) for text in args.set)
    if args.slack_ms is not None and args.slack_ms < 0:
        raise ScenarioError("--slack-ms must not be negative")
    seed = args.seed if args.seed is not None else str(secrets.randbelow(2**32))
    report_dir: Path = args.report_dir.resolve()

    unavailable: dict[str, str] = {}
    needed = {
        impl.name: impl for mix in mixes for impl in mix_implementations(mix, registry)
    }
    for impl in needed.values():
        if impl.needs_rust_build:
            try:
                ensure_rust_peer(
                    log_path=report_dir / "rust_peer-build.log",
                    echo=lambda line: print(line, file=sys.stderr, flush=True),
                )
            except BuildError as error:
                unavailable[impl.name] = str(error)
                print(f"error: {error}", file=sys.stderr, flush=True)

    options = RunOptions(
        report_dir=report_dir,
        registry=registry,
        seed=seed,
        timing=Timing(startup=args.startup_timeout, reply=args.reply_timeout),
        config_overrides=overrides,
        slack_ms=args.slack_ms,
    )
    total = len(scenarios) * len(mixes)
    print(
        f"running {len(scenarios)} scenario(s) x {len(mixes)} mix(es), seed {seed}",
        flush=True,
    )
    results, on_result = _progress(total)
    started_at = time.time()
    started = time.monotonic()
    interrupted = False
    try:
        asyncio.run(run_suite(scenarios, mixes, options, unavailable, on_result))
    except KeyboardInterrupt:
        interrupted = True
        print(
            "interrupted: ending node processes and writing a partial report",
            file=sys.stderr,
        )
    finally:
        kill_all_sync()

    report = build_report(
        results,
        seed=seed,
        runtime=args.runtime,
        registry=registry,
        config_overrides=overrides,
        started_at=started_at,
        duration_seconds=time.monotonic() - started,
    )
    json_path, md_path = write_report(report_dir, report, results)
    if results:
        _print_matrix(results)
    print(f"\nreport: {md_path}\n        {json_path}")
    if interrupted:
        return 130
    return 0 if results and all(result.passed for result in results) else 1


def _command_list(args: argparse.Namespace) -> int:
    registry = build_registry(args.impl)
    for scenario in load_scenarios(args.scenario_dir).values():
        summary = scenario.description.splitlines()[0] if scenario.description else ""
        print(f"{scenario.name}: {summary}")
    print()
    for name, impl in sorted(registry.items()):
        print(f"{name} ({impl.label}): {impl.describe()}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["codec"]:
        # The codec check has its own parser, which must also see --help.
        from conformance.codec_check import main as codec_main

        return codec_main(arguments[1:])
    args = _parser().parse_args(arguments)
    try:
        if args.command == "run":
            return _command_run(args)
        return _command_list(args)
    except ScenarioError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
