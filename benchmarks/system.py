"""`JobSystem`: the interface that every benchmarked job system implements.

Each system lives in its own module and measures the same workloads the same way, so that
`benchmarks.workloads` can turn the raw measurements into comparable rows.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar


class BenchmarkError(RuntimeError):
    """A benchmark could not complete: a worker failed, timed out or lost jobs."""


class NotSupportedError(Exception):
    """A system cannot run a workload as specified. The message gives the reason."""


@dataclass(frozen=True)
class DrainResult:
    """Timing of one drain, from the worker's start to the last job finished, in seconds.

    `worker_cpu_s` is the CPU time of the worker process (every thread, user and system) and
    `redis_cpu_s` that of the Redis server, over the same span, or None when not measured.
    """

    elapsed_s: float
    worker_cpu_s: float | None = None
    redis_cpu_s: float | None = None


@dataclass(frozen=True)
class LongDrainResult:
    """Timing and resident set sizes of the worker process over one long drain.

    The sizes are taken just before the worker starts, after the first `warm_count` jobs and
    after the last job, in bytes.
    """

    elapsed_s: float
    rss_start_bytes: int
    rss_warm_bytes: int
    rss_end_bytes: int


class JobSystem(ABC):
    """One job system under test, connected to one Redis server.

    Each method starts from empty queues of its own and deletes the keys it created before it
    returns, so that calls do not affect one another. Every job runs in a separate worker
    process, so that the enqueueing Python interpreter does not share its GIL with the jobs.
    Times are in seconds.
    """

    name: ClassVar[str]

    max_concurrency: ClassVar[int | None] = None
    """Maximum number of jobs that one worker process runs at once, or None for no limit."""

    @abstractmethod
    def enqueue_one_by_one(self, count: int) -> float:
        """Enqueue `count` no-op jobs from this thread, one call per job.

        Returns the elapsed time of the enqueue loop, job construction included.
        """

    @abstractmethod
    def enqueue_bulk(self, count: int) -> float:
        """Enqueue `count` no-op jobs with the system's bulk call.

        Returns the elapsed time of that call, job construction included.
        """

    @abstractmethod
    def drain(self, count: int, concurrency: int, job_sleep_s: float) -> DrainResult:
        """Run `count` jobs on one worker process with `concurrency` threads.

        Each job sleeps `job_sleep_s` (0 for a no-op). The jobs are enqueued before the worker
        starts, untimed. The result spans the worker's start to the last job finished.
        """

    @abstractmethod
    def start_latencies(self, concurrency: int, gaps_s: Sequence[float]) -> list[float]:
        """Measure the time from the enqueue call to the start of the job, on an idle worker.

        Enqueues one job at a time, waits until it has started, then pauses for the next entry
        of `gaps_s`, so that the worker is idle again before the next job. Returns one latency
        per entry of `gaps_s`.
        """

    @abstractmethod
    def delayed_lateness(
        self, concurrency: int, delay_s: float, gaps_s: Sequence[float]
    ) -> list[float]:
        """Measure how late jobs start that were enqueued to run `delay_s` after the call.

        Enqueues one delayed job per entry of `gaps_s`, pausing that long after each, and
        returns for each job its start time minus its due time (the enqueue call plus
        `delay_s`).
        """

    @abstractmethod
    def redis_memory_per_job(self, count: int) -> float:
        """Queue `count` no-op jobs and return the growth of Redis `used_memory` per job, in bytes.

        No worker runs. The memory is read before the jobs are enqueued and after.
        """

    def drain_processes(self, count: int, concurrency: int, processes: int) -> DrainResult:
        """Run `count` no-op jobs on `processes` worker processes, timed like `drain`.

        Raises NotSupportedError unless the system overrides it.
        """
        raise NotSupportedError(f"measured for oxanus_sync only, not implemented for {self.name}")

    def family_start_latencies(
        self, concurrency: int, members: int, gaps_s: Sequence[float]
    ) -> list[float]:
        """Measure `start_latencies` on a queue family of `members` members, each with one job.

        The worker first runs one no-op job per member, untimed, then each measured job goes
        to another member. Raises NotSupportedError unless the system overrides it.
        """
        raise NotSupportedError(f"measured for oxanus_sync only, not implemented for {self.name}")

    def long_drain(self, count: int, concurrency: int, warm_count: int) -> LongDrainResult:
        """Run `count` no-op jobs on one worker process and report its resident set size.

        Raises NotSupportedError unless the system overrides it.
        """
        raise NotSupportedError(f"measured for oxanus_sync only, not implemented for {self.name}")

    @abstractmethod
    def close(self) -> None:
        """Close the system's connections."""
