"""Profile the Runner of the no-op drain workload with py-spy and summarize where time goes.

    python -m benchmarks.profile_drain [--count N] [--concurrency N] [--wall] [--no-profile]

Starts a private redis-server (see `oxanus_sync.devserver`), enqueues --count no-op jobs and
drains them with one Runner subprocess recorded by ``py-spy record --format raw``. By default
py-spy samples only the thread that holds the GIL, so the shares are of Python CPU time;
--wall samples every thread that is not idle. Prints the drain rate, the CPU time per job of
the Runner and of Redis, the share of samples per package and the functions with the most
samples of their own. Samples taken while the Runner imports modules and builds its config
are left out.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from benchmarks.oxanus import OxanusSync
from benchmarks.system import BenchmarkError
from oxanus_sync.devserver import DevServerError, find_or_start

SAMPLE_RATE_HZ = 1000
TOP_FUNCTIONS = 15

# Frames present only while the Runner process starts, not while it drains.
_STARTUP_FRAMES = ("_find_and_load", "build_runner")
_LINE_NUMBER = re.compile(r":\d+\)$")
_PACKAGES = (
    ("redis/", "redis-py"),
    ("json/", "json"),
    ("oxanus_sync/", "oxanus_sync"),
    ("logging/", "logging"),
    ("benchmarks/", "benchmark jobs and harness"),
    ("threading.py", "threading"),
    ("concurrent/", "threading"),
    ("<string>", "generated dataclass methods"),
)


def summarize_raw_profile(lines: Iterable[str]) -> str:
    """Summarize py-spy's raw format (one "frame;frame;... count" line per stack)."""
    per_package: Counter[str] = Counter()
    per_function: Counter[str] = Counter()
    total = 0
    unreadable = 0
    for line in lines:
        stack, _, count_text = line.rstrip("\n").rpartition(" ")
        # With --nonblocking, py-spy reads the stacks of a running process and now and then
        # gets a frame name that contains a newline, which splits its line in two.
        if not stack or not count_text.isdigit():
            unreadable += 1
            continue
        if any(frame in stack for frame in _STARTUP_FRAMES):
            continue
        count = int(count_text)
        total += count
        leaf = _LINE_NUMBER.sub(")", stack.split(";")[-1])
        per_function[leaf] += count
        per_package[_package_of(leaf)] += count

    if total == 0:
        return "py-spy recorded no samples of the drain"

    report = [f"{total} samples, {unreadable} unreadable lines skipped"]
    report.append("share per package of the innermost frame:")
    report += [f"  {100 * n / total:5.1f}%  {name}" for name, n in per_package.most_common()]
    report.append(f"functions with the most samples of their own (top {TOP_FUNCTIONS}):")
    report += [
        f"  {100 * n / total:5.1f}%  {name}" for name, n in per_function.most_common(TOP_FUNCTIONS)
    ]
    return "\n".join(report)


def _package_of(frame: str) -> str:
    location = frame[frame.rfind("(") + 1 : -1]
    for prefix, package in _PACKAGES:
        if location.startswith(prefix):
            return package
    return location or "no Python frame"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.profile_drain",
        description="Profile the no-op drain Runner of oxanus_sync with py-spy.",
    )
    parser.add_argument("--count", type=int, default=20_000, help="jobs to drain")
    parser.add_argument("--concurrency", type=int, default=8, help="threads of the queue")
    parser.add_argument(
        "--wall", action="store_true", help="sample every busy thread, not only the GIL holder"
    )
    parser.add_argument(
        "--no-profile", action="store_true", help="run the drain without py-spy, for timing"
    )
    parser.add_argument(
        "--output", type=Path, help="keep py-spy's raw output in this file (default: a temp file)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.no_profile and shutil.which("py-spy") is None:
        print(
            "error: py-spy is not on PATH; install it with `pip install py-spy`, "
            "or pass --no-profile to time the drain only",
            file=sys.stderr,
        )
        return 1

    with tempfile.TemporaryDirectory(prefix="oxanus-profile-") as temporary:
        output = args.output or Path(temporary) / "drain.txt"
        prefix: list[str] = []
        if not args.no_profile:
            prefix = ["py-spy", "record", "--format", "raw", "--rate", str(SAMPLE_RATE_HZ)]
            prefix += ["--nonblocking", "-o", str(output)]
            prefix += [] if args.wall else ["--gil"]
            prefix.append("--")

        try:
            with find_or_start(None) as server:
                system = OxanusSync(server.url, drain_command_prefix=prefix)
                try:
                    result = system.drain(args.count, args.concurrency, job_sleep_s=0.0)
                finally:
                    system.close()
        except (BenchmarkError, DevServerError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1

        print(
            f"drained {args.count} no-op jobs at concurrency {args.concurrency}: "
            f"{args.count / result.elapsed_s:,.0f} jobs/s"
        )
        if result.worker_cpu_s is not None and result.redis_cpu_s is not None:
            print(
                f"CPU per job: Runner {1e6 * result.worker_cpu_s / args.count:.0f} us, "
                f"Redis {1e6 * result.redis_cpu_s / args.count:.0f} us"
            )
        if not args.no_profile:
            with output.open() as raw:
                print(summarize_raw_profile(raw))
    return 0


if __name__ == "__main__":
    sys.exit(main())
