"""`PeerSystem`: the base of the modules that benchmark other job systems than oxanus_sync.

A peer module subclasses `PeerSystem` for the parent side (enqueueing, checks) and defines
`build_worker` for the worker subprocess, `python -m benchmarks.peer_worker MODULE ...`, so
that every peer's worker is started, timed and stopped the same way.

The peers' key names are fixed by their libraries (RQ always uses "rq:" keys, for example),
so a `PeerSystem` runs only on a Redis server that the benchmarks started: every call ends
with FLUSHDB.
"""

from __future__ import annotations

import sys
import threading
import time
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import ClassVar

import redis

from benchmarks.harness import (
    DRAIN_TIMEOUT_S,
    JOB_TIMEOUT_S,
    WARMUP_JOBS,
    pop_result,
    redis_used_memory,
    run_drain_subprocess,
    start_serving_subprocess,
    stop_process,
    wait_for_results,
)
from benchmarks.system import BenchmarkError, DrainResult, JobSystem

QUEUE_NAME = "bench"
"""Name of the one queue of every peer."""

RESULT_KEY = "bench-results"
"""Redis list that the record_start jobs push their measured delays to."""

WARMUP_KEY = "bench-warmup"
"""Redis list that the warm-up jobs of the latency workloads push to."""

_results_url: str | None = None
_results_connection: redis.Redis | None = None
_results_lock = threading.Lock()


def set_results_url(url: str) -> None:
    """Set the Redis URL of `results_connection`; the worker subprocess calls it first."""
    global _results_url
    _results_url = url


def results_connection() -> redis.Redis:
    """Return the connection that a worker's record_start jobs push their delays with.

    The first call opens it, to the URL given to `set_results_url`.
    """
    global _results_connection
    if _results_connection is None:
        with _results_lock:
            if _results_connection is None:
                if _results_url is None:
                    raise RuntimeError("results_connection() called before set_results_url()")
                _results_connection = redis.Redis.from_url(_results_url)
    return _results_connection


def noop(index: int) -> None:
    """Do nothing: the no-op job. `index` only gives the payload an argument to decode."""


def sleep(seconds: float) -> None:
    """Sleep `seconds`, which releases the GIL as an I/O-bound job would."""
    time.sleep(seconds)


def record_start(reference: float, result_key: str) -> None:
    """Push `time.time() - reference`, in seconds, to the list `result_key`.

    The peers' record_start jobs call it first thing, as oxanus_sync's RecordStart job does
    in its `process`.
    """
    started = time.time()
    results_connection().rpush(result_key, repr(started - reference))


class PeerSystem(JobSystem):
    """A job system other than oxanus_sync, on a Redis server that the benchmarks started.

    Subclasses name their module in `worker_module`, which must define `build_worker` (see
    `benchmarks.peer_worker`), and implement the enqueue hooks below.
    """

    worker_module: ClassVar[str]

    def __init__(self, url: str) -> None:
        self.url = url
        self.redis = redis.Redis.from_url(url)

    def close(self) -> None:
        self.redis.close()

    # Hooks for the subclasses

    @abstractmethod
    def enqueue_for_drain(self, count: int, job_sleep_s: float) -> None:
        """Enqueue `count` jobs that sleep `job_sleep_s` (no-op jobs if 0), untimed."""

    @abstractmethod
    def enqueue_record_start(self, reference: float, result_key: str) -> None:
        """Enqueue a job that pushes its start time minus `reference` to `result_key`."""

    @abstractmethod
    def enqueue_record_start_in(self, delay_s: float, reference: float, result_key: str) -> None:
        """Enqueue the job of `enqueue_record_start` to run `delay_s` seconds from now."""

    @abstractmethod
    def pending_jobs(self) -> int:
        """Return the number of jobs still waiting in the queue."""

    # Workloads

    def drain(self, count: int, concurrency: int, job_sleep_s: float) -> DrainResult:
        with self._clean_server():
            self.enqueue_for_drain(count, job_sleep_s)
            command = [
                *self._worker_command("drain", concurrency),
                "--count",
                str(count),
                "--timeout",
                str(DRAIN_TIMEOUT_S),
            ]
            result = run_drain_subprocess(command, f"{self.name} drain worker")
            if result["processed"] != count:
                raise BenchmarkError(
                    f"{self.name} worker completed {result['processed']} of {count} jobs"
                )
            pending = self.pending_jobs()
            if pending != 0:
                raise BenchmarkError(f"{self.name} drain ended with {pending} jobs still queued")
            return DrainResult(
                elapsed_s=result["elapsed_s"],
                worker_cpu_s=result["worker_cpu_s"],
                redis_cpu_s=result["redis_cpu_s"],
            )

    def start_latencies(self, concurrency: int, gaps_s: Sequence[float]) -> list[float]:
        with self._clean_server(), self._serving_worker(concurrency):
            latencies = []
            for gap_s in gaps_s:
                self.enqueue_record_start(time.time(), RESULT_KEY)
                latencies.append(pop_result(self.redis, RESULT_KEY))
                time.sleep(gap_s)
            return latencies

    def delayed_lateness(
        self, concurrency: int, delay_s: float, gaps_s: Sequence[float]
    ) -> list[float]:
        with self._clean_server(), self._serving_worker(concurrency):
            for gap_s in gaps_s:
                self.enqueue_record_start_in(delay_s, time.time() + delay_s, RESULT_KEY)
                time.sleep(gap_s)

            wait_for_results(self.redis, RESULT_KEY, len(gaps_s), delay_s + JOB_TIMEOUT_S)
            return [float(value) for value in self.redis.lrange(RESULT_KEY, 0, -1)]

    def redis_memory_per_job(self, count: int) -> float:
        with self._clean_server():
            # One untimed job first, as in the enqueue workloads, creates the queue's own keys.
            self.enqueue_for_drain(1, 0.0)
            before = redis_used_memory(self.redis)
            self.enqueue_for_drain(count, 0.0)
            return (redis_used_memory(self.redis) - before) / count

    # Helpers

    @contextmanager
    def _clean_server(self) -> Iterator[None]:
        """Empty the server's database before and after the block."""
        self.redis.flushdb()
        try:
            yield
        finally:
            self.redis.flushdb()

    def _worker_command(self, mode: str, concurrency: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "benchmarks.peer_worker",
            self.worker_module,
            mode,
            "--url",
            self.url,
            "--concurrency",
            str(concurrency),
        ]

    @contextmanager
    def _serving_worker(self, concurrency: int) -> Iterator[None]:
        """Run a worker subprocess, warmed up by a few jobs, until the block exits."""
        process = start_serving_subprocess(self._worker_command("serve", concurrency))
        try:
            for _ in range(WARMUP_JOBS):
                self.enqueue_record_start(time.time(), WARMUP_KEY)
                pop_result(self.redis, WARMUP_KEY, process)
            yield
        finally:
            stop_process(process)
