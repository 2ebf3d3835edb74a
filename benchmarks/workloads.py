"""The benchmark workloads, run the same way against every `JobSystem`."""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from benchmarks.system import DrainResult, JobSystem

CONCURRENCY = 8
"""Threads of the one worker process in the drain and latency workloads."""

SLEEP_JOB_S = 0.010
"""Duration of each job of the sleeping drain. The ideal rate is CONCURRENCY / SLEEP_JOB_S."""

DELAY_S = 0.2
"""Delay of each job of the lateness workload."""

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
    drain_sleep: int
    start_latency: int
    delayed_lateness: int


FULL_SIZES = Sizes(
    enqueue_one_by_one=10_000,
    enqueue_bulk=20_000,
    drain_noop=20_000,
    drain_sleep=4_000,
    start_latency=500,
    delayed_lateness=300,
)
QUICK_SIZES = Sizes(
    enqueue_one_by_one=1_000,
    enqueue_bulk=5_000,
    drain_noop=2_000,
    drain_sleep=400,
    start_latency=100,
    delayed_lateness=40,
)


@dataclass(frozen=True)
class Measurement:
    """One value of one run, such as a rate or a percentile."""

    metric: str
    value: float
    unit: str


@dataclass(frozen=True)
class Workload:
    """A named workload; `measure` runs it once and returns its measurements."""

    name: str
    measure: Callable[[JobSystem, Sizes, random.Random], list[Measurement]]


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
    result = system.drain(count, CONCURRENCY, job_sleep_s=0.0)
    return [
        Measurement("drain_noop", count / result.elapsed_s, "jobs/s"),
        *_cpu_per_job("drain_noop", result, count),
    ]


def measure_drain_sleep(system: JobSystem, sizes: Sizes, rng: random.Random) -> list[Measurement]:
    count = sizes.drain_sleep
    result = system.drain(count, CONCURRENCY, job_sleep_s=SLEEP_JOB_S)
    rate = count / result.elapsed_s
    ideal_rate = CONCURRENCY / SLEEP_JOB_S
    return [
        Measurement("drain_sleep_10ms", rate, "jobs/s"),
        Measurement("drain_sleep_10ms_of_ideal", 100 * rate / ideal_rate, "%"),
    ]


def measure_start_latency(
    system: JobSystem, sizes: Sizes, rng: random.Random
) -> list[Measurement]:
    gaps_s = [rng.uniform(*LATENCY_GAP_S) for _ in range(sizes.start_latency)]
    latencies_s = system.start_latencies(CONCURRENCY, gaps_s)
    return _percentiles("start_latency", latencies_s)


def measure_delayed_lateness(
    system: JobSystem, sizes: Sizes, rng: random.Random
) -> list[Measurement]:
    gaps_s = [rng.uniform(*LATENESS_GAP_S) for _ in range(sizes.delayed_lateness)]
    lateness_s = system.delayed_lateness(CONCURRENCY, DELAY_S, gaps_s)
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
    Workload("drain_sleep_10ms", measure_drain_sleep),
    Workload("start_latency", measure_start_latency),
    Workload("delayed_lateness", measure_delayed_lateness),
]
