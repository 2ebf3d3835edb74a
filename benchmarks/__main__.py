"""Command line of the benchmarks: ``python -m benchmarks [--quick] [--json FILE] [--runs N]``.

Starts a private redis-server on a unix socket (see `oxanus_sync.devserver`) unless --url is
given, and runs each workload --runs times on every system. Prints a Markdown table of the
median, min and max, with each median's ratio to oxanus_sync's, and writes the same rows as
JSON with --json.

The runs alternate between systems: round 1 runs each workload on every system in turn,
then round 2 does the same, so that a slow spell of the machine affects all systems alike.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import random
import shlex
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import FrameType

import redis

from benchmarks.report import Row, format_table, order_by_workload, summarize, write_json
from benchmarks.system import BenchmarkError, JobSystem, NotSupportedError
from benchmarks.workloads import FULL_SIZES, QUICK_SIZES, WORKLOADS, Measurement, Sizes, Workload
from oxanus_sync.devserver import DevServerError, find_or_start

_URL_FROM_ENVIRONMENT = "$REDIS_URL"

BASELINE = "oxanus_sync"


@dataclass(frozen=True)
class SystemEntry:
    """Module and class name of a system's `JobSystem`, and the distribution that provides it."""

    module: str
    class_name: str
    distribution: str


SYSTEMS = {
    "oxanus_sync": SystemEntry("benchmarks.oxanus", "OxanusSync", "oxanus_sync"),
    "rq": SystemEntry("benchmarks.peer_rq", "Rq", "rq"),
    "dramatiq": SystemEntry("benchmarks.peer_dramatiq", "Dramatiq", "dramatiq"),
    "huey": SystemEntry("benchmarks.peer_huey", "Huey", "huey"),
    "celery": SystemEntry("benchmarks.peer_celery", "CeleryPeer", "celery"),
}
"""The systems under test, in the order of the table, the baseline first."""

REPORTED_DISTRIBUTIONS = ("rq", "dramatiq", "huey", "celery", "kombu", "redis", "hiredis")

SETUP_HINT = "run `bash benchmarks/setup.sh` and then `benchmarks/.venv/bin/python -m benchmarks`"


@dataclass(frozen=True)
class Outcome:
    """A system and workload that produced no row, and why."""

    system: str
    workload: str
    reason: str


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    workload_names = [workload.name for workload in WORKLOADS]
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure enqueue rates, drain rates, start latencies and memory of "
        "oxanus_sync and of RQ, Dramatiq, Huey and Celery on the same workloads.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="run smaller workloads, once each unless --runs is given (under a minute)",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the rows as JSON to FILE")
    parser.add_argument(
        "--runs", type=_positive_int, help="runs of each workload (default: 3, or 1 with --quick)"
    )
    parser.add_argument(
        "--url",
        nargs="?",
        const=_URL_FROM_ENVIRONMENT,
        help="use the Redis server at URL instead of starting a private one; without a value, "
        "use the value of REDIS_URL. Only oxanus_sync runs there, and it writes and deletes "
        "only keys that start with 'bench-'",
    )
    parser.add_argument(
        "--only",
        type=_name_list,
        metavar="NAMES",
        help=f"comma-separated workloads to run, out of: {', '.join(workload_names)}",
    )
    parser.add_argument(
        "--systems",
        type=_name_list,
        metavar="NAMES",
        help=f"comma-separated systems to run, out of: {', '.join(SYSTEMS)} "
        "(default: every one that is installed)",
    )
    args = parser.parse_args(argv)

    unknown = sorted(set(args.only or []) - set(workload_names))
    if unknown:
        parser.error(f"unknown workload {', '.join(unknown)}; choose from {workload_names}")
    unknown = sorted(set(args.systems or []) - set(SYSTEMS))
    if unknown:
        parser.error(f"unknown system {', '.join(unknown)}; choose from {list(SYSTEMS)}")
    if args.url == _URL_FROM_ENVIRONMENT:
        args.url = os.environ.get("REDIS_URL")
        if not args.url:
            parser.error("--url without a value uses REDIS_URL, which is not set")
    if args.url and args.systems and set(args.systems) != {BASELINE}:
        parser.error(
            "--url runs only oxanus_sync: the other systems' keys have fixed names, so they "
            "run only on the private server that the benchmarks start"
        )
    if args.runs is None:
        args.runs = 1 if args.quick else 3
    return args


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {value}")
    return value


def _name_list(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def select_systems(requested: list[str] | None, url_given: bool) -> tuple[list[str], list[str]]:
    """Return the systems to run and notes on the systems left out.

    Raises BenchmarkError if a requested system is not installed.
    """
    if url_given:
        return [BASELINE], ["other systems: not run, because --url was given"]

    names = requested if requested is not None else list(SYSTEMS)
    selected: list[str] = []
    notes: list[str] = []
    for name in SYSTEMS:
        if name not in names:
            continue
        if name != BASELINE and _version(SYSTEMS[name].distribution) is None:
            message = f"{name}: not installed; {SETUP_HINT}"
            if requested is not None:
                raise BenchmarkError(message)
            notes.append(message)
            continue
        selected.append(name)
    return selected, notes


def create_system(name: str, url: str) -> JobSystem:
    entry = SYSTEMS[name]
    system_class: Callable[[str], JobSystem] = getattr(
        importlib.import_module(entry.module), entry.class_name
    )
    return system_class(url)


def run_rounds(
    systems: Sequence[JobSystem], sizes: Sizes, runs: int, only: list[str] | None
) -> tuple[list[Row], list[Outcome]]:
    """Run each selected workload `runs` times on every system, alternating systems.

    Returns the summary rows, and the system and workload pairs that produced no row or failed
    in some run, with the reason. After a failure or a NotSupportedError, that pair is not
    run again.
    """
    workloads = [workload for workload in WORKLOADS if only is None or workload.name in only]
    measurements: dict[tuple[str, str], list[list[Measurement]]] = {}
    outcomes: list[Outcome] = []
    excluded: set[tuple[str, str]] = set()
    started = time.monotonic()

    for run in range(runs):
        for workload in workloads:
            for system in systems:
                key = (system.name, workload.name)
                if key in excluded:
                    continue
                elapsed_s = time.monotonic() - started
                print(
                    f"[{elapsed_s:6.0f} s] round {run + 1}/{runs} {workload.name} {system.name}",
                    file=sys.stderr,
                    flush=True,
                )
                outcome = _measure(workload, system, sizes, run, measurements)
                if outcome is not None:
                    outcomes.append(outcome)
                    excluded.add(key)

    rows: list[Row] = []
    for (system_name, _), runs_of_workload in measurements.items():
        rows.extend(summarize(system_name, runs_of_workload))
    return order_by_workload(rows, [system.name for system in systems]), outcomes


def _measure(
    workload: Workload,
    system: JobSystem,
    sizes: Sizes,
    run: int,
    measurements: dict[tuple[str, str], list[list[Measurement]]],
) -> Outcome | None:
    # The same seed for every system gives each one the same pauses between jobs.
    rng = random.Random(run)
    try:
        values = workload.measure(system, sizes, rng)
    except NotSupportedError as error:
        return Outcome(system.name, workload.name, f"not supported: {error}")
    except BenchmarkError as error:
        print(f"error: {system.name} {workload.name}: {error}", file=sys.stderr, flush=True)
        first_line = str(error).splitlines()[0]
        return Outcome(system.name, workload.name, f"failed in round {run + 1}: {first_line}")
    measurements.setdefault((system.name, workload.name), []).append(values)
    return None


def describe_machine(url: str, server_source: str) -> list[str]:
    with redis.Redis.from_url(url) as connection:
        server_version = connection.info("server").get("redis_version", "unknown")
    versions = ", ".join(
        f"{name} {_version(name) or 'not installed'}" for name in REPORTED_DISTRIBUTIONS
    )
    platform_line = (
        f"CPUs available: {len(os.sched_getaffinity(0))}; Python {platform.python_version()}; "
        f"Redis {server_version} ({server_source})"
    )
    oxanus_version = _version("oxanus_sync") or "from the source tree"
    return [platform_line, f"oxanus_sync {oxanus_version}; {versions}"]


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # SystemExit unwinds the `with` blocks, which stop the worker subprocesses and the server.
    sys.exit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        names, notes = select_systems(args.systems, bool(args.url))
        server = find_or_start(args.url)
    except (BenchmarkError, DevServerError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1

    load_before = _load_average()
    started = time.monotonic()
    with server:
        source = "--url" if args.url else server.source
        machine = describe_machine(server.url, source)
        systems = [create_system(name, server.url) for name in names]
        try:
            rows, outcomes = run_rounds(systems, sizes, args.runs, args.only)
        finally:
            for system in systems:
                system.close()
    wall_time_s = time.monotonic() - started

    print(f"command: python -m benchmarks {shlex.join(sys.argv[1:])}")
    for line in machine:
        print(line)
    print(f"load average (1, 5, 15 min): {load_before} before, {_load_average()} after")
    print(f"wall time: {wall_time_s:.0f} s; runs: {args.runs}; jobs per run: {sizes}")
    print()
    print(format_table(rows, BASELINE if BASELINE in names else None))
    if outcomes or notes:
        print("\nnot measured:")
        for outcome in outcomes:
            print(f"- {outcome.system} {outcome.workload}: {outcome.reason}")
        for note in notes:
            print(f"- {note}")
    if args.json is not None:
        write_json(args.json, rows)
        print(f"\nwrote {len(rows)} rows to {args.json}")
    failed = any(outcome.reason.startswith("failed") for outcome in outcomes)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
