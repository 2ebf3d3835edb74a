"""Command line of the benchmarks: ``python -m benchmarks [--quick] [--json FILE] [--runs N]``.

Starts a private redis-server on a unix socket (see `oxanus_sync.devserver`) unless --url is
given, runs each workload --runs times, prints a Markdown table of the median, min and max,
and writes the same rows as JSON with --json.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shlex
import sys
from pathlib import Path

import redis

from benchmarks.oxanus import OxanusSync
from benchmarks.report import Row, format_table, summarize, write_json
from benchmarks.system import BenchmarkError, JobSystem
from benchmarks.workloads import FULL_SIZES, QUICK_SIZES, WORKLOADS, Sizes
from oxanus_sync.devserver import DevServerError, find_or_start

_URL_FROM_ENVIRONMENT = "$REDIS_URL"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    workload_names = [workload.name for workload in WORKLOADS]
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure enqueue rates, drain rates and start latencies of oxanus_sync.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="run smaller workloads (under a minute in total)"
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the rows as JSON to FILE")
    parser.add_argument(
        "--runs", type=_positive_int, default=3, help="runs of each workload (default: 3)"
    )
    parser.add_argument(
        "--url",
        nargs="?",
        const=_URL_FROM_ENVIRONMENT,
        help="use the Redis server at URL instead of starting a private one; without a value, "
        "use the value of REDIS_URL. The benchmarks write and delete only keys that start "
        "with 'bench-'",
    )
    parser.add_argument(
        "--only",
        type=lambda text: [name.strip() for name in text.split(",") if name.strip()],
        metavar="NAMES",
        help=f"comma-separated workloads to run, out of: {', '.join(workload_names)}",
    )
    args = parser.parse_args(argv)

    unknown = sorted(set(args.only or []) - set(workload_names))
    if unknown:
        parser.error(f"unknown workload {', '.join(unknown)}; choose from {workload_names}")
    if args.url == _URL_FROM_ENVIRONMENT:
        args.url = os.environ.get("REDIS_URL")
        if not args.url:
            parser.error("--url without a value uses REDIS_URL, which is not set")
    return args


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {value}")
    return value


def run_system(system: JobSystem, sizes: Sizes, runs: int, only: list[str] | None) -> list[Row]:
    """Run each selected workload `runs` times on `system` and return one row per metric."""
    rows: list[Row] = []
    for workload in WORKLOADS:
        if only is not None and workload.name not in only:
            continue
        measurements = []
        for run in range(runs):
            print(f"{system.name} {workload.name} run {run + 1}/{runs}", file=sys.stderr)
            # The same seed for every system gives each one the same pauses between jobs.
            rng = random.Random(run)
            measurements.append(workload.measure(system, sizes, rng))
        rows.extend(summarize(system.name, measurements))
    return rows


def describe_machine(url: str, server_source: str) -> str:
    with redis.Redis.from_url(url) as connection:
        server_version = connection.info("server").get("redis_version", "unknown")
    return (
        f"CPUs available: {len(os.sched_getaffinity(0))}; "
        f"Python {platform.python_version()}; "
        f"Redis {server_version} ({server_source})"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    try:
        server = find_or_start(args.url)
    except DevServerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1

    with server:
        source = "--url" if args.url else server.source
        system = OxanusSync(server.url)
        try:
            machine = describe_machine(server.url, source)
            rows = run_system(system, sizes, args.runs, args.only)
        except BenchmarkError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        finally:
            system.close()

    print(f"command: python -m benchmarks {shlex.join(sys.argv[1:])}")
    print(machine)
    print(f"jobs per run: {sizes}")
    print()
    print(format_table(rows))
    if args.json is not None:
        write_json(args.json, rows)
        print(f"\nwrote {len(rows)} rows to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
