"""The oxanus_sync implementation of `JobSystem`.

Each call works in a fresh key namespace, "bench-<pid>-<n>", and deletes its keys at the end.
Jobs run in a Runner subprocess (`benchmarks.oxanus_worker`) with one queue.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

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
from benchmarks.oxanus_worker import FAMILY_PREFIX, QUEUE_NAME, Noop, RecordStart, Sleep
from benchmarks.system import BenchmarkError, DrainResult, JobSystem, LongDrainResult
from oxanus_sync import Client, FamilyMember, Queue, QueueConfig, QueueFamily
from oxanus_sync.worker import Worker

WORKER_MODULE = "benchmarks.oxanus_worker"

_DELETE_BATCH = 1000


class OxanusSync(JobSystem):
    """Benchmarks oxanus_sync on the Redis server at `url`.

    `drain_command_prefix` goes in front of the command line of the drain Runner subprocess,
    for example a profiler: ["py-spy", "record", "-o", "drain.txt", "--"].
    """

    name = "oxanus_sync"

    def __init__(self, url: str, *, drain_command_prefix: Sequence[str] = ()) -> None:
        self.url = url
        self.redis = redis.Redis.from_url(url)
        self.drain_command_prefix = list(drain_command_prefix)
        self._namespace_numbers = itertools.count(1)

    def close(self) -> None:
        self.redis.close()

    def enqueue_one_by_one(self, count: int) -> float:
        queue = Queue(QUEUE_NAME)
        with self._fresh_client() as client:
            # This untimed call registers the queue and loads the Lua script for the timed calls.
            client.enqueue(queue, Noop(index=-1))

            started = time.perf_counter()
            for index in range(count):
                client.enqueue(queue, Noop(index=index))
            return time.perf_counter() - started

    def enqueue_bulk(self, count: int) -> float:
        queue = Queue(QUEUE_NAME)
        with self._fresh_client() as client:
            client.enqueue(queue, Noop(index=-1))

            started = time.perf_counter()
            client.enqueue_many(queue, [Noop(index=index) for index in range(count)])
            return time.perf_counter() - started

    def drain(self, count: int, concurrency: int, job_sleep_s: float) -> DrainResult:
        jobs: list[Worker]
        if job_sleep_s > 0:
            jobs = [Sleep(seconds=job_sleep_s) for _ in range(count)]
        else:
            jobs = [Noop(index=index) for index in range(count)]
        result = self._drain(jobs, concurrency)
        return DrainResult(
            elapsed_s=result["elapsed_s"],
            worker_cpu_s=result["worker_cpu_s"],
            redis_cpu_s=result["redis_cpu_s"],
        )

    def drain_processes(self, count: int, concurrency: int, processes: int) -> DrainResult:
        jobs = [Noop(index=index) for index in range(count)]
        result = self._drain(jobs, concurrency, "--processes", str(processes))
        return DrainResult(
            elapsed_s=result["elapsed_s"],
            worker_cpu_s=result["worker_cpu_s"],
            redis_cpu_s=result["redis_cpu_s"],
        )

    def long_drain(self, count: int, concurrency: int, warm_count: int) -> LongDrainResult:
        jobs = [Noop(index=index) for index in range(count)]
        result = self._drain(jobs, concurrency, "--warm-count", str(warm_count))
        return LongDrainResult(
            elapsed_s=result["elapsed_s"],
            rss_start_bytes=result["rss_start_bytes"],
            rss_warm_bytes=result["rss_warm_bytes"],
            rss_end_bytes=result["rss_end_bytes"],
        )

    def redis_memory_per_job(self, count: int) -> float:
        queue = Queue(QUEUE_NAME)
        with self._fresh_client() as client:
            client.enqueue(queue, Noop(index=-1))
            before = redis_used_memory(self.redis)
            client.enqueue_many(queue, [Noop(index=index) for index in range(count)])
            return (redis_used_memory(self.redis) - before) / count

    def start_latencies(self, concurrency: int, gaps_s: Sequence[float]) -> list[float]:
        queue = Queue(QUEUE_NAME, QueueConfig(concurrency=concurrency))
        with self._fresh_client() as client, self._serving_runner(client, queue):
            result_key = f"{client.namespace}:bench:starts"
            latencies = []
            for gap_s in gaps_s:
                client.enqueue(queue, RecordStart(reference=time.time(), result_key=result_key))
                latencies.append(pop_result(self.redis, result_key))
                time.sleep(gap_s)
            return latencies

    def family_start_latencies(
        self, concurrency: int, members: int, gaps_s: Sequence[float]
    ) -> list[float]:
        family = QueueFamily(FAMILY_PREFIX, QueueConfig(concurrency=concurrency))
        with self._fresh_client() as client:
            for index in range(members):
                client.enqueue(family(f"tenant-{index}"), Noop(index=index))
            with self._serving_runner(client, family("warm-up"), "--family"):
                self._wait_until_drained(client, family)
                result_key = f"{client.namespace}:bench:starts"
                latencies = []
                for number, gap_s in enumerate(gaps_s):
                    # 7919 is a prime that does not divide the member count (10,000), so the
                    # first `members` jobs all go to different members.
                    member = family(f"tenant-{number * 7919 % members}")
                    job = RecordStart(reference=time.time(), result_key=result_key)
                    client.enqueue(member, job)
                    latencies.append(pop_result(self.redis, result_key))
                    time.sleep(gap_s)
                return latencies

    def delayed_lateness(
        self, concurrency: int, delay_s: float, gaps_s: Sequence[float]
    ) -> list[float]:
        queue = Queue(QUEUE_NAME, QueueConfig(concurrency=concurrency))
        with self._fresh_client() as client, self._serving_runner(client, queue):
            result_key = f"{client.namespace}:bench:lateness"
            for gap_s in gaps_s:
                job = RecordStart(reference=time.time() + delay_s, result_key=result_key)
                client.enqueue_in(queue, job, delay_s)
                time.sleep(gap_s)

            wait_for_results(self.redis, result_key, len(gaps_s), delay_s + JOB_TIMEOUT_S)
            return [float(value) for value in self.redis.lrange(result_key, 0, -1)]

    # Helpers

    @contextmanager
    def _fresh_client(self) -> Iterator[Client]:
        namespace = f"bench-{os.getpid()}-{next(self._namespace_numbers)}"
        client = Client(self.redis, namespace=namespace)
        try:
            yield client
        finally:
            self._delete_keys(f"{namespace}:*")

    def _delete_keys(self, pattern: str) -> None:
        batch: list[bytes] = []
        for key in self.redis.scan_iter(match=pattern, count=_DELETE_BATCH):
            batch.append(key)
            if len(batch) >= _DELETE_BATCH:
                self.redis.unlink(*batch)
                batch.clear()
        if batch:
            self.redis.unlink(*batch)

    def _worker_command(self, mode: str, namespace: str, concurrency: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            WORKER_MODULE,
            mode,
            "--url",
            self.url,
            "--namespace",
            namespace,
            "--concurrency",
            str(concurrency),
        ]

    def _drain(self, jobs: Sequence[Worker], concurrency: int, *options: str) -> dict[str, Any]:
        """Enqueue `jobs`, drain them with the Runner subprocess and check that all succeeded.

        `options` go to the end of the subprocess's command line.
        """
        count = len(jobs)
        queue = Queue(QUEUE_NAME, QueueConfig(concurrency=concurrency))
        with self._fresh_client() as client:
            client.enqueue_many(queue, jobs)
            command = [
                *self.drain_command_prefix,
                *self._worker_command("drain", client.namespace, concurrency),
                "--count",
                str(count),
                "--timeout",
                str(DRAIN_TIMEOUT_S),
                *options,
            ]
            result = run_drain_subprocess(command, "drain Runner")
            if result["processed"] != count:
                raise BenchmarkError(
                    f"drain Runner processed {result['processed']} of {count} jobs"
                )

            counts = client.stats([queue])[0]
            if counts.succeeded != count or counts.ready != 0:
                raise BenchmarkError(
                    f"drain of {count} jobs ended with {counts.succeeded} succeeded and "
                    f"{counts.ready} still ready in namespace {client.namespace}"
                )
            return result

    def _wait_until_drained(self, client: Client, family: QueueFamily) -> None:
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while client.stats([family])[0].ready or client.stats([family])[0].running:
            if time.monotonic() > deadline:
                raise BenchmarkError(
                    f"queue family {family.name} still had jobs after {DRAIN_TIMEOUT_S} s"
                )
            time.sleep(0.05)

    @contextmanager
    def _serving_runner(
        self, client: Client, queue: Queue | FamilyMember, *options: str
    ) -> Iterator[None]:
        """Run a Runner subprocess on `queue`, warmed up by a few jobs, until the block exits.

        `options` go to the end of the subprocess's command line.
        """
        concurrency = queue.concurrency if isinstance(queue, Queue) else queue.family.concurrency
        command = [*self._worker_command("serve", client.namespace, concurrency), *options]
        process = start_serving_subprocess(command)
        try:
            warmup_key = f"{client.namespace}:bench:warmup"
            for _ in range(WARMUP_JOBS):
                client.enqueue(queue, RecordStart(reference=time.time(), result_key=warmup_key))
                pop_result(self.redis, warmup_key, process)
            yield
        finally:
            stop_process(process)
