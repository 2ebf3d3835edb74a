"""The benchmark workloads, run the same way against every `JobSystem`."""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from benchmarks.system import DrainResult, JobSystem, NotSupportedError

CONCURRENCY = 8
"""Threads of the one worker process in the drain and latency workloads."""

HIGH_CONCURRENCY = 64
"""Threads of the one worker process in the `drain_sleep_10ms_c64` workload."""

RUNNER_PROCESSES = 2
"""Worker processes of the `drain_noop_2_processes` workload."""

WARM_JOBS = 1000
"""Jobs after which the large backlog drain reads the worker's resident set size again."""

SLEEP_JOB_S = 0.010
"""Duration of each job of the sleeping drains. The ideal rate is concurrency / SLEEP_JOB_S."""

_MIB = 1024 * 1024

DELAY_S = 0.2
"""Delay of each job of the lateness workload."""

FAMILY_MEMBERS = 10_000
"""Members of the queue family of the `family_start_latency` workload, one job each."""

LATENCY_GAP_S = (0.002, 0.010)
"""Range of the random pause after each job of the start latency workload."""

LATENESS_GAP_S = (0.005, 0.015)
"""Range of the random pause after each enqueue of the lateness workload."""


@dataclass(frozen=True)
class Sizes:
    """Number of jobs of each workload in one run."""

    enqueue_one_by_one: int
    enqueue_bulk: int
    drain_noop: int
    drain_noop_processes: int
    drain_sleep: int
    drain_sleep_high: int
    start_latency: int
    family_start_latency: int
    delayed_lateness: int
    redis_memory: int
    small_backlog: int
    large_backlog: int
    runner_memory: int


FULL_SIZES = Sizes(
    enqueue_one_by_one=10_000,
    enqueue_bulk=20_000,
    drain_noop=20_000,
    drain_noop_processes=20_000,
    drain_sleep=4_000,
    drain_sleep_high=20_000,
    start_latency=500,
    family_start_latency=500,
    delayed_lateness=300,
    redis_memory=20_000,
    small_backlog=1_000,
    large_backlog=200_000,
    runner_memory=1_000_000,
)
QUICK_SIZES = Sizes(
    enqueue_one_by_one=500,
    enqueue_bulk=1_000,
    drain_noop=500,
    drain_noop_processes=1_000,
    drain_sleep=200,
    drain_sleep_high=1_000,
    start_latency=50,
    family_start_latency=50,
    delayed_lateness=20,
    redis_memory=1_000,
    small_backlog=1_000,
    large_backlog=10_000,
    runner_memory=20_000,
)


@dataclass(frozen=True)
class Measurement:
    """One value of one run, such as a rate or a percentile."""

    metric: str
    value: float
    unit: str


@dataclass(frozen=True)
class Workload:
    """A named workload; `measure` runs it once and returns its measurements.

    `measure` raises NotSupportedError, before it starts any work, if the system cannot run
    the workload as specified.
    """

    name: str
    measure: Callable[[JobSystem, Sizes, random.Random], list[Measurement]]


def usable_concurrency(system: JobSystem, requested: int) -> int:
    """Return `requested`, or the system's maximum concurrency if that is lower."""
    if system.max_concurrency is None:
        return requested
    return min(requested, system.max_concurrency)


def require_concurrency(system: JobSystem, required: int) -> None:
    """Raise NotSupportedError unless one worker process of `system` runs `required` jobs."""
    if system.max_concurrency is not None and system.max_concurrency < required:
        raise NotSupportedError(
            f"one {system.name} worker process runs at most {system.max_concurrency} "
            f"job(s) at once, not {required}"
        )


def measure_enqueue_one_by_one(
    system: JobSystem, sizes: Sizes, rng: random.Random
) -> list[Measurement]:
    count = sizes.enqueue_one_by_one
    elapsed_s = system.enqueue_one_by_one(count)
    return [Measurement("enqueue_one_by_one", count / elapsed_s, "jobs/s")]


def measure_enqueue_bulk(system: JobSystem, sizes: Sizes, rng: random.Random) -> list[Measurement]:
    count = sizes.enqueue_bulk
    elapsed_s = system.enqueue_bulk(count)
    return [Measurement("enqueue_bulk", count / elapsed_s, "jobs/s")]


def measure_drain_noop(system: JobSystem, sizes: Sizes, rng: random.Random) -> list[Measurement]:
    count = sizes.drain_noop
    result = system.drain(count, usable_concurrency(system, CONCURRENCY), job_sleep_s=0.0)
    return [
        Measurement("drain_noop", count / result.elapsed_s, "jobs/s"),
        *_cpu_per_job("drain_noop", result, count),
    ]


def measure_drain_noop_processes(
    system: JobSystem, sizes: Sizes, rng: random.Random
) -> list[Measurement]:
    count = sizes.drain_noop_processes
    metric = f"drain_noop_{RUNNER_PROCESSES}_processes"
    result = system.drain_processes(count, CONCURRENCY, RUNNER_PROCESSES)
    return [
        Measurement(metric, count / result.elapsed_s, "jobs/s"),
        *_cpu_per_job(metric, result, count),
    ]


def measure_drain_sleep(system: JobSystem, sizes: Sizes, rng: random.Random) -> list[Measurement]:
    return _drain_sleep("drain_sleep_10ms", system, sizes.drain_sleep, CONCURRENCY)


def measure_drain_sleep_high(
    system: JobSystem, sizes: Sizes, rng: random.Random
) -> list[Measurement]:
    metric = f"drain_sleep_10ms_c{HIGH_CONCURRENCY}"
    return _drain_sleep(metric, system, sizes.drain_sleep_high, HIGH_CONCURRENCY)


def _drain_sleep(metric: str, system: JobSystem, count: int, concurrency: int) -> list[Measurement]:
    require_concurrency(system, concurrency)
    result = system.drain(count, concurrency, job_sleep_s=SLEEP_JOB_S)
    rate = count / result.elapsed_s
    ideal_rate = concurrency / SLEEP_JOB_S
    return [
        Measurement(metric, rate, "jobs/s"),
        Measurement(f"{metric}_of_ideal", 100 * rate / ideal_rate, "%"),
    ]


def measure_redis_memory(system: JobSystem, sizes: Sizes, rng: random.Random) -> list[Measurement]:
    bytes_per_job = system.redis_memory_per_job(sizes.redis_memory)
    return [Measurement("redis_memory_per_job", bytes_per_job, "bytes")]


def measure_small_backlog(system: JobSystem, sizes: Sizes, rng: random.Random) -> list[Measurement]:
    count = sizes.small_backlog
    result = system.drain(count, usable_concurrency(system, CONCURRENCY), job_sleep_s=0.0)
    return [Measurement("drain_small_backlog", count / result.elapsed_s, "jobs/s")]


def measure_large_backlog(system: JobSystem, sizes: Sizes, rng: random.Random) -> list[Measurement]:
    count = sizes.large_backlog
    result = system.long_drain(count, CONCURRENCY, WARM_JOBS)
    return [
        Measurement("drain_large_backlog", count / result.elapsed_s, "jobs/s"),
        Measurement("worker_rss_start", result.rss_start_bytes / _MIB, "MiB"),
        Measurement(f"worker_rss_after_{WARM_JOBS}", result.rss_warm_bytes / _MIB, "MiB"),
        Measurement("worker_rss_end", result.rss_end_bytes / _MIB, "MiB"),
        Measurement(
            "worker_rss_growth", (result.rss_end_bytes - result.rss_warm_bytes) / _MIB, "MiB"
        ),
    ]


def measure_runner_memory(system: JobSystem, sizes: Sizes, rng: random.Random) -> list[Measurement]:
    count = sizes.runner_memory
    result = system.long_drain(count, CONCURRENCY, WARM_JOBS)
    return [
        Measurement("runner_memory_drain", count / result.elapsed_s, "jobs/s"),
        Measurement(f"runner_memory_rss_after_{WARM_JOBS}", result.rss_warm_bytes / _MIB, "MiB"),
        Measurement("runner_memory_rss_end", result.rss_end_bytes / _MIB, "MiB"),
        Measurement(
            "runner_memory_rss_growth",
            (result.rss_end_bytes - result.rss_warm_bytes) / _MIB,
            "MiB",
        ),
    ]


def measure_start_latency(system: JobSystem, sizes: Sizes, rng: random.Random) -> list[Measurement]:
    gaps_s = [rng.uniform(*LATENCY_GAP_S) for _ in range(sizes.start_latency)]
    latencies_s = system.start_latencies(usable_concurrency(system, CONCURRENCY), gaps_s)
    return _percentiles("start_latency", latencies_s)


def measure_family_start_latency(
    system: JobSystem, sizes: Sizes, rng: random.Random
) -> list[Measurement]:
    gaps_s = [rng.uniform(*LATENCY_GAP_S) for _ in range(sizes.family_start_latency)]
    concurrency = usable_concurrency(system, CONCURRENCY)
    latencies_s = system.family_start_latencies(concurrency, FAMILY_MEMBERS, gaps_s)
    return _percentiles("family_start_latency", latencies_s)


def measure_delayed_lateness(
    system: JobSystem, sizes: Sizes, rng: random.Random
) -> list[Measurement]:
    gaps_s = [rng.uniform(*LATENESS_GAP_S) for _ in range(sizes.delayed_lateness)]
    lateness_s = system.delayed_lateness(usable_concurrency(system, CONCURRENCY), DELAY_S, gaps_s)
    return _percentiles("delayed_lateness", lateness_s)


def _cpu_per_job(metric: str, result: DrainResult, count: int) -> list[Measurement]:
    """Return the worker's and the Redis server's CPU time per job, in microseconds."""
    measurements = []
    if result.worker_cpu_s is not None:
        worker_us = 1e6 * result.worker_cpu_s / count
        measurements.append(Measurement(f"{metric}_worker_cpu", worker_us, "us/job"))
    if result.redis_cpu_s is not None:
        redis_us = 1e6 * result.redis_cpu_s / count
        measurements.append(Measurement(f"{metric}_redis_cpu", redis_us, "us/job"))
    return measurements


def _percentiles(metric: str, values_s: Sequence[float]) -> list[Measurement]:
    """Return the p50 and p99 of `values_s` in milliseconds."""
    values_ms = [value * 1000 for value in values_s]
    cut_points = statistics.quantiles(values_ms, n=100, method="inclusive")
    return [
        Measurement(f"{metric}_p50", statistics.median(values_ms), "ms"),
        Measurement(f"{metric}_p99", cut_points[98], "ms"),
    ]


WORKLOADS = [
    Workload("enqueue_one_by_one", measure_enqueue_one_by_one),
    Workload("enqueue_bulk", measure_enqueue_bulk),
    Workload("drain_noop", measure_drain_noop),
    Workload("drain_noop_processes", measure_drain_noop_processes),
    Workload("drain_sleep_10ms", measure_drain_sleep),
    Workload("drain_sleep_10ms_c64", measure_drain_sleep_high),
    Workload("start_latency", measure_start_latency),
    Workload("family_start_latency", measure_family_start_latency),
    Workload("delayed_lateness", measure_delayed_lateness),
    Workload("redis_memory", measure_redis_memory),
    Workload("drain_small_backlog", measure_small_backlog),
    Workload("drain_large_backlog", measure_large_backlog),
    Workload("runner_memory", measure_runner_memory),
]
