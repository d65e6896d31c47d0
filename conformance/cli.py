"""Command line: ``swim-conformance run``, ``codec``, ``bench`` and ``list``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from conformance.cluster import Timing
from conformance.config import parse_set_option
from conformance.errors import BuildError, DockerError, ScenarioError
from conformance.harness import RunOptions, RunResult, check_mixes, run_suite
from conformance.impls import Implementation, build_registry, mix_implementations
from conformance.process import kill_all_sync
from conformance.report import JUNIT_FILE, build_report, write_report
from conformance.runtime import PROCESS_RUNTIME, RuntimeKind
from conformance.rust_build import ensure_rust_peer
from conformance.scenario import Scenario, load_scenarios

if TYPE_CHECKING:
    from conformance.docker_runtime import DockerRuntimeKind

DEFAULT_MIXES = "python,rust,mixed"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="swim-conformance",
        description=(
            "Run SWIM conformance scenarios on clusters of swim_py (swim-node) and "
            "foca (rust_peer) nodes, as processes on 127.0.0.1 or in containers, "
            "and write a report."
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "run",
        help="run scenarios and write report.json, report.md and junit.xml",
        description=(
            "Build rust_peer if it is missing or stale (or, with --runtime docker, "
            "the node images), run each scenario in each mix, print one line per "
            "run, then the result matrix. Exits 1 if any run failed or none could "
            "run in the runtime; a scenario the runtime cannot run is reported as "
            "n/a, not as failed."
        ),
    )
    run.add_argument(
        "--report-dir",
        type=Path,
        default=Path("conformance-report"),
        metavar="DIR",
        help="folder for report.json, report.md, junit.xml and the per-run node "
        "logs and timelines (default: ./conformance-report)",
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
        choices=["process", "docker"],
        default="process",
        help="how nodes run: 'process' starts each node as a local process on "
        "127.0.0.1; 'docker' runs each node in a container of the images from "
        "docker/build-images.sh, on networks the run creates and removes "
        "(default: process)",
    )
    run.add_argument(
        "--image-build",
        choices=["always", "missing", "never"],
        default="always",
        help="with --runtime docker: 'always' runs docker/build-images.sh first, "
        "which rebuilds only what changed (seconds when nothing did); 'missing' "
        "runs it only when an image is missing; 'never' uses the images as they "
        "are (default: always)",
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

    commands.add_parser(
        "bench",
        help=(
            "benchmark swim_py beside foca and swim-protocol"
            " (see `swim-conformance bench --help`)"
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
            f"available: {', '.join(scenarios)} "
            "(swim-conformance list describes each)"
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


def _progress(
    total: int, name_width: int
) -> tuple[list[RunResult], Callable[[RunResult], None]]:
    results: list[RunResult] = []

    def report(result: RunResult) -> None:
        results.append(result)
        status = {"passed": "PASS", "failed": "FAIL", "unavailable": "N/A "}[
            result.status
        ]
        print(
            f"[{len(results):>2}/{total}] {result.scenario:<{name_width}}"
            f" {result.mix:<12} "
            f"{status}  {result.duration_seconds:6.1f} s",
            flush=True,
        )
        message = result.error or result.unavailable
        if message:
            first = message.splitlines()[0]
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
                cell = {"passed": "pass", "failed": "FAIL", "unavailable": "n/a"}[
                    result.status
                ]
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
        # In the docker runtime the image build compiles rust_peer.
        if impl.needs_rust_build and args.runtime == "process":
            try:
                ensure_rust_peer(
                    log_path=report_dir / "rust_peer-build.log",
                    echo=lambda line: print(line, file=sys.stderr, flush=True),
                )
            except BuildError as error:
                unavailable[impl.name] = str(error)
                print(f"error: {error}", file=sys.stderr, flush=True)

    runtime: RuntimeKind = PROCESS_RUNTIME
    remove_containers: Callable[[], tuple[int, int]] | None = None
    if args.runtime == "docker":
        try:
            docker_kind = _docker_runtime(
                list(needed.values()), args.image_build, report_dir, unavailable
            )
        except DockerError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        runtime, remove_containers = docker_kind, docker_kind.remove_all

    options = RunOptions(
        report_dir=report_dir,
        registry=registry,
        seed=seed,
        timing=Timing(startup=args.startup_timeout, reply=args.reply_timeout),
        config_overrides=overrides,
        slack_ms=args.slack_ms,
        runtime=runtime,
    )
    total = len(scenarios) * len(mixes)
    print(
        f"running {len(scenarios)} scenario(s) x {len(mixes)} mix(es) in the "
        f"{runtime.name} runtime, seed {seed}",
        flush=True,
    )
    results, on_result = _progress(total, max(len(s.name) for s in scenarios))
    started_at = time.time()
    started = time.monotonic()
    interrupted = False
    # SIGTERM (as from a CI job that is cancelled) ends the run like Ctrl-C,
    # so that the nodes and containers are removed.
    previous_handler = signal.signal(signal.SIGTERM, _interrupt)
    try:
        asyncio.run(run_suite(scenarios, mixes, options, unavailable, on_result))
    except KeyboardInterrupt:
        interrupted = True
        print(
            "interrupted: ending the nodes and writing a partial report",
            file=sys.stderr,
        )
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
        kill_all_sync()
        if remove_containers is not None:
            _remove_containers(remove_containers)

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
    print(
        f"\nreport: {md_path}\n        {json_path}\n        {report_dir / JUNIT_FILE}"
    )
    print(f"wall time: {time.monotonic() - started:.1f} s")
    if interrupted:
        return 130
    if any(result.status == "failed" for result in results):
        return 1
    if not any(result.passed for result in results):
        print(f"no run was available in the {runtime.name} runtime", file=sys.stderr)
        return 1
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _docker_runtime(
    needed: Sequence[Implementation],
    image_build: str,
    report_dir: Path,
    unavailable: dict[str, str],
) -> DockerRuntimeKind:
    """Connect to Docker, remove stale runs and build the images.

    A failed image build makes every needed implementation unavailable, as
    a failed cargo build does in the process runtime.
    """
    from conformance.docker_images import ensure_images
    from conformance.docker_runtime import (
        DockerRuntimeKind,
        connect_client,
        remove_stale,
    )

    without_image = [impl.name for impl in needed if impl.image is None]
    if without_image:
        raise DockerError(
            f"implementation(s) {', '.join(without_image)} have no container image; "
            "the docker runtime runs only the built-in python and rust"
        )
    client = connect_client()
    stale = remove_stale(client)
    if stale:
        print(
            f"removed the containers and networks of stale runs {', '.join(stale)}",
            file=sys.stderr,
        )
    try:
        seconds = ensure_images(
            client,
            [impl.image for impl in needed if impl.image is not None],
            image_build,
            report_dir / "image-build.log",
            echo=lambda line: print(line, file=sys.stderr, flush=True),
        )
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        for impl in needed:
            unavailable[impl.name] = str(error)
    else:
        if seconds is not None:
            print(f"node images ready in {seconds:.1f} s", file=sys.stderr)
    kind = DockerRuntimeKind(client)
    print(
        f"docker run id {kind.run_id}: containers and networks carry the label "
        f"swim-conformance.run={kind.run_id}",
        flush=True,
    )
    return kind


def _remove_containers(remove: Callable[[], tuple[int, int]]) -> None:
    try:
        containers, networks = remove()
    except Exception as error:
        print(f"error: could not remove the run's containers: {error}", file=sys.stderr)
        return
    if containers or networks:
        print(
            f"removed {containers} container(s) and {networks} network(s) left "
            "by the run",
            file=sys.stderr,
        )


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
    if arguments[:1] == ["bench"]:
        from conformance.bench.runner import main as bench_main

        return bench_main(arguments[1:])
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
