"""Huey under the benchmarks: `RedisHuey`, task calls and one consumer with thread workers.

The consumer runs in one subprocess with as many thread workers as the workload's
concurrency (`huey_consumer -k thread -w N`) and without worker health checks
(`huey_consumer -C`), so its main thread only waits for a stop signal. Its scheduler checks
for due tasks every second, the shortest interval Huey allows. With `RedisHuey`'s default
blocking reads, idle workers wait in BRPOP.

Huey has no bulk enqueue. The bulk workload calls `Huey.enqueue` for each task, as a task
call does, while the storage's Redis connection is swapped for a redis-py pipeline, so the
LPUSH commands go in one round trip.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from huey import RedisHuey
from huey.api import Task, TaskWrapper
from huey.consumer import Consumer
from huey.signals import SIGNAL_COMPLETE

from benchmarks import peer
from benchmarks.peer import QUEUE_NAME, PeerSystem


@dataclass(frozen=True)
class _Tasks:
    noop: TaskWrapper
    sleep: TaskWrapper
    record_start: TaskWrapper


def _create_huey(url: str) -> tuple[RedisHuey, _Tasks]:
    """Return a RedisHuey on `url` with the benchmark jobs as tasks.

    Tasks return None, which Huey does not store with its default `store_none=False`.
    """
    huey = RedisHuey(QUEUE_NAME, url=url)
    tasks = _Tasks(
        noop=huey.task(name="noop")(peer.noop),
        sleep=huey.task(name="sleep")(peer.sleep),
        record_start=huey.task(name="record_start")(peer.record_start),
    )
    return huey, tasks


class Huey(PeerSystem):
    name = "huey"
    worker_module = "benchmarks.peer_huey"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.huey, self.tasks = _create_huey(url)

    def enqueue_one_by_one(self, count: int) -> float:
        noop = self.tasks.noop
        with self._clean_server():
            noop(-1)

            started = time.perf_counter()
            for index in range(count):
                noop(index)
            return time.perf_counter() - started

    def enqueue_bulk(self, count: int) -> float:
        noop = self.tasks.noop
        with self._clean_server():
            noop(-1)

            started = time.perf_counter()
            with self._pipelined_storage():
                for index in range(count):
                    noop(index)
            return time.perf_counter() - started

    def enqueue_for_drain(self, count: int, job_sleep_s: float) -> None:
        with self._pipelined_storage():
            for index in range(count):
                if job_sleep_s > 0:
                    self.tasks.sleep(job_sleep_s)
                else:
                    self.tasks.noop(index)

    def enqueue_record_start(self, reference: float, result_key: str) -> None:
        self.tasks.record_start(reference, result_key)

    def enqueue_record_start_in(self, delay_s: float, reference: float, result_key: str) -> None:
        self.tasks.record_start.schedule((reference, result_key), delay=delay_s)

    def pending_jobs(self) -> int:
        return int(self.huey.pending_count())

    @contextmanager
    def _pipelined_storage(self) -> Iterator[None]:
        """Queue the storage's commands in a pipeline, sent when the block exits."""
        storage = self.huey.storage
        connection = storage.conn
        with connection.pipeline(transaction=False) as pipeline:
            storage.conn = pipeline
            try:
                yield
            finally:
                storage.conn = connection
            pipeline.execute()


class _HueyWorker:
    def __init__(self, url: str, concurrency: int, on_complete: Callable[[], None]) -> None:
        self.huey, _ = _create_huey(url)

        @self.huey.signal(SIGNAL_COMPLETE)
        def count_completion(signal_name: str, task: Task, *args: Any, **kwargs: Any) -> None:
            on_complete()

        self.consumer = Consumer(
            self.huey, workers=concurrency, worker_type="thread", check_worker_health=False
        )

    def run(self) -> None:
        self.consumer.run()

    def request_stop(self) -> None:
        # SIGINT is the consumer's graceful stop: it waits for the running tasks.
        os.kill(os.getpid(), signal.SIGINT)


def build_worker(
    url: str, concurrency: int, scheduler: bool, on_complete: Callable[[], None]
) -> _HueyWorker:
    # The consumer always runs its scheduler thread, so `scheduler` changes nothing.
    return _HueyWorker(url, concurrency, on_complete)
