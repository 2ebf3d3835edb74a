"""The oxanus_sync implementation of `JobSystem`.

Each call works in a fresh key namespace, "bench-<pid>-<n>", and deletes its keys at the end.
Jobs run in a Runner subprocess (`benchmarks.oxanus_worker`) with one queue.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import redis

from benchmarks.oxanus_worker import QUEUE_NAME, Noop, RecordStart, Sleep
from benchmarks.system import BenchmarkError, DrainResult, JobSystem
from oxanus_sync import Client, Queue, QueueConfig
from oxanus_sync.worker import Worker

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
WORKER_MODULE = "benchmarks.oxanus_worker"

JOB_TIMEOUT_S = 30.0
"""Maximum wait for one job of the latency workloads to start, Runner startup included."""

DRAIN_TIMEOUT_S = 600.0
"""Maximum duration of one drain, passed to the Runner subprocess."""

WARMUP_JOBS = 5
"""Jobs run one at a time, untimed, before the latency workloads start measuring."""

STOP_TIMEOUT_S = 30.0
"""Maximum wait for a serving Runner subprocess to exit after SIGTERM."""

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
        queue = Queue(QUEUE_NAME, QueueConfig(concurrency=concurrency))
        jobs: list[Worker]
        if job_sleep_s > 0:
            jobs = [Sleep(seconds=job_sleep_s) for _ in range(count)]
        else:
            jobs = [Noop(index=index) for index in range(count)]

        with self._fresh_client() as client:
            client.enqueue_many(queue, jobs)
            result = self._run_drain_worker(client.namespace, concurrency, count)

            counts = client.stats([queue])[0]
            if counts.succeeded != count or counts.ready != 0:
                raise BenchmarkError(
                    f"drain of {count} jobs ended with {counts.succeeded} succeeded and "
                    f"{counts.ready} still ready in namespace {client.namespace}"
                )
            return DrainResult(
                elapsed_s=result["elapsed_s"],
                worker_cpu_s=result["worker_cpu_s"],
                redis_cpu_s=result["redis_cpu_s"],
            )

    def start_latencies(self, concurrency: int, gaps_s: Sequence[float]) -> list[float]:
        queue = Queue(QUEUE_NAME, QueueConfig(concurrency=concurrency))
        with self._fresh_client() as client, self._serving_runner(client, queue):
            result_key = f"{client.namespace}:bench:starts"
            latencies = []
            for gap_s in gaps_s:
                client.enqueue(queue, RecordStart(reference=time.time(), result_key=result_key))
                latencies.append(self._pop_result(result_key))
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

            self._wait_for_results(result_key, len(gaps_s), delay_s + JOB_TIMEOUT_S)
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
            sys.executable, "-m", WORKER_MODULE, mode,
            "--url", self.url,
            "--namespace", namespace,
            "--concurrency", str(concurrency),
        ]

    def _run_drain_worker(self, namespace: str, concurrency: int, count: int) -> dict[str, float]:
        command = [
            *self.drain_command_prefix,
            *self._worker_command("drain", namespace, concurrency),
            "--count", str(count),
            "--timeout", str(DRAIN_TIMEOUT_S),
        ]
        completed = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env=_worker_environment(),
            cwd=REPOSITORY_ROOT,
            timeout=DRAIN_TIMEOUT_S + 60,
            check=False,
        )
        if completed.returncode != 0:
            raise BenchmarkError(
                f"drain Runner exited with status {completed.returncode}:\n{completed.stderr}"
            )

        result_lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
        if not result_lines:
            raise BenchmarkError(
                f"drain Runner printed no result:\n{completed.stdout}\n{completed.stderr}"
            )
        result: dict[str, float] = json.loads(result_lines[-1])
        if result["processed"] != count:
            raise BenchmarkError(f"drain Runner processed {result['processed']} of {count} jobs")
        return result

    @contextmanager
    def _serving_runner(self, client: Client, queue: Queue) -> Iterator[None]:
        """Run a Runner subprocess on `queue`, warmed up by a few jobs, until the block exits."""
        command = self._worker_command("serve", client.namespace, queue.concurrency)
        process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            env=_worker_environment(),
            cwd=REPOSITORY_ROOT,
        )
        try:
            warmup_key = f"{client.namespace}:bench:warmup"
            for _ in range(WARMUP_JOBS):
                client.enqueue(queue, RecordStart(reference=time.time(), result_key=warmup_key))
                self._pop_result(warmup_key, process)
            yield
        finally:
            _stop_process(process)

    def _pop_result(self, key: str, process: subprocess.Popen[bytes] | None = None) -> float:
        """Wait for the next value a job pushed to `key`; stop early if `process` has exited."""
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                status = process.returncode
                raise BenchmarkError(f"the Runner subprocess exited with status {status}")
            reply = self.redis.blpop([key], timeout=1)
            if reply is not None:
                return float(reply[1])
        raise BenchmarkError(
            f"timed out after {JOB_TIMEOUT_S:g} s waiting for a job to record its start in {key}"
        )

    def _wait_for_results(self, key: str, count: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while (recorded := self.redis.llen(key)) < count:
            if time.monotonic() > deadline:
                raise BenchmarkError(
                    f"timed out after {timeout_s:g} s: only {recorded} of {count} jobs "
                    f"recorded their start in {key}"
                )
            time.sleep(0.01)


def _worker_environment() -> dict[str, str]:
    environment = dict(os.environ)
    paths = [str(REPOSITORY_ROOT), environment.get("PYTHONPATH", "")]
    environment["PYTHONPATH"] = os.pathsep.join(path for path in paths if path)
    return environment


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
