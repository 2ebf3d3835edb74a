"""Helpers that every benchmarked system shares: worker subprocesses, results and resources.

The parent side starts worker subprocesses, reads the one JSON line that a drain worker
prints, and waits for the start times that jobs push to a Redis list. The worker side reads
the CPU time of the Redis server and the resident set size of its own process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import redis

from benchmarks.system import BenchmarkError

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent

JOB_TIMEOUT_S = 30.0
"""Maximum wait for one job of the latency workloads to start, worker startup included."""

DRAIN_TIMEOUT_S = 600.0
"""Maximum duration of one drain, passed to the worker subprocess."""

WARMUP_JOBS = 5
"""Jobs run one at a time, untimed, before the latency workloads start measuring."""

STOP_TIMEOUT_S = 30.0
"""Maximum wait for a serving worker subprocess to exit after its stop signal."""

DRAIN_POLL_INTERVAL_S = 0.002
"""Pause between two reads of a drain worker's in-process completion counter."""

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def worker_environment() -> dict[str, str]:
    """Return this process's environment with the repository root first on PYTHONPATH."""
    environment = dict(os.environ)
    paths = [str(REPOSITORY_ROOT), environment.get("PYTHONPATH", "")]
    environment["PYTHONPATH"] = os.pathsep.join(path for path in paths if path)
    return environment


def run_drain_subprocess(command: list[str], description: str) -> dict[str, Any]:
    """Run a drain worker to completion and return the last JSON object it printed.

    Raises BenchmarkError if the worker exits with a non-zero status or prints no JSON line.
    """
    try:
        completed = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env=worker_environment(),
            cwd=REPOSITORY_ROOT,
            timeout=DRAIN_TIMEOUT_S + 60,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise BenchmarkError(f"{description} timed out after {error.timeout:g} s") from error
    if completed.returncode != 0:
        raise BenchmarkError(
            f"{description} exited with status {completed.returncode}:\n{completed.stderr}"
        )

    result_lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if not result_lines:
        raise BenchmarkError(
            f"{description} printed no result:\n{completed.stdout}\n{completed.stderr}"
        )
    result: dict[str, Any] = json.loads(result_lines[-1])
    return result


def start_serving_subprocess(command: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        env=worker_environment(),
        cwd=REPOSITORY_ROOT,
    )


def stop_process(process: subprocess.Popen[bytes], stop_signal: int = signal.SIGTERM) -> None:
    """Send `stop_signal` to `process` and wait for it to exit, killing it after a timeout."""
    if process.poll() is not None:
        return
    process.send_signal(stop_signal)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def pop_result(
    connection: redis.Redis, key: str, process: subprocess.Popen[bytes] | None = None
) -> float:
    """Wait for the next value a job pushed to `key`; stop early if `process` has exited."""
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            status = process.returncode
            raise BenchmarkError(f"the worker subprocess exited with status {status}")
        reply = connection.blpop([key], timeout=1)
        if reply is not None:
            return float(reply[1])
    raise BenchmarkError(
        f"timed out after {JOB_TIMEOUT_S:g} s waiting for a job to record its start in {key}"
    )


def wait_for_results(connection: redis.Redis, key: str, count: int, timeout_s: float) -> None:
    """Wait until the list `key` contains `count` values."""
    deadline = time.monotonic() + timeout_s
    while (recorded := connection.llen(key)) < count:
        if time.monotonic() > deadline:
            raise BenchmarkError(
                f"timed out after {timeout_s:g} s: only {recorded} of {count} jobs "
                f"recorded their start in {key}"
            )
        time.sleep(0.01)


def redis_cpu_s(connection: redis.Redis) -> float:
    """Return the CPU time, user plus system, that the Redis server process has used."""
    info = connection.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def redis_used_memory(connection: redis.Redis) -> int:
    """Return `used_memory` from INFO memory: the bytes that Redis has allocated."""
    return int(connection.info("memory")["used_memory"])


def rss_bytes() -> int:
    """Return the resident set size of this process, from /proc/self/statm."""
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * _PAGE_SIZE
