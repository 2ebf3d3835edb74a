"""RQ (python-rq) under the benchmarks: `Queue.enqueue` and a `SimpleWorker`.

RQ's default `Worker` forks a work horse process for every job. These benchmarks run
`SimpleWorker`, which runs each job in the worker process itself. In a one-off burst drain
of 500 no-op jobs here, `Worker` did 99 and 107 jobs/s and `SimpleWorker` 230 and 262.

A SimpleWorker runs one job at a time and has no threads, so RQ runs every workload at
concurrency 1, and the workloads that need 8 or 64 jobs at once report it as not supported.
RQ 3.0 has no thread pool worker: its `WorkerPool` runs several worker processes.

Jobs are enqueued with `result_ttl=0`, so that RQ deletes each job when it succeeds instead
of keeping its result, as oxanus_sync keeps none.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, ClassVar

import redis
from rq import Queue, SimpleWorker

from benchmarks import peer
from benchmarks.peer import QUEUE_NAME, PeerSystem

BULK_BATCH = 1000
"""Jobs per `enqueue_many` call when enqueueing for a drain, untimed."""


class Rq(PeerSystem):
    name = "rq"
    worker_module = "benchmarks.peer_rq"
    max_concurrency: ClassVar[int | None] = 1

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.queue = Queue(QUEUE_NAME, connection=self.redis)

    def enqueue_one_by_one(self, count: int) -> float:
        with self._clean_server():
            self.queue.enqueue(peer.noop, -1, result_ttl=0)

            started = time.perf_counter()
            for index in range(count):
                self.queue.enqueue(peer.noop, index, result_ttl=0)
            return time.perf_counter() - started

    def enqueue_bulk(self, count: int) -> float:
        with self._clean_server():
            self.queue.enqueue(peer.noop, -1, result_ttl=0)

            started = time.perf_counter()
            self.queue.enqueue_many(
                [Queue.prepare_data(peer.noop, (index,), result_ttl=0) for index in range(count)]
            )
            return time.perf_counter() - started

    def enqueue_for_drain(self, count: int, job_sleep_s: float) -> None:
        for first in range(0, count, BULK_BATCH):
            batch = range(first, min(first + BULK_BATCH, count))
            if job_sleep_s > 0:
                job_datas = [
                    Queue.prepare_data(peer.sleep, (job_sleep_s,), result_ttl=0) for _ in batch
                ]
            else:
                job_datas = [
                    Queue.prepare_data(peer.noop, (index,), result_ttl=0) for index in batch
                ]
            self.queue.enqueue_many(job_datas)

    def enqueue_record_start(self, reference: float, result_key: str) -> None:
        self.queue.enqueue(peer.record_start, reference, result_key, result_ttl=0)

    def enqueue_record_start_in(self, delay_s: float, reference: float, result_key: str) -> None:
        self.queue.enqueue_in(
            timedelta(seconds=delay_s), peer.record_start, reference, result_key, result_ttl=0
        )

    def pending_jobs(self) -> int:
        return self.queue.count


class _CountingWorker(SimpleWorker):
    """A SimpleWorker that calls `on_complete` after RQ has recorded each job's success."""

    on_complete: Callable[[], None] = staticmethod(lambda: None)

    def handle_job_success(self, *args: Any, **kwargs: Any) -> None:
        super().handle_job_success(*args, **kwargs)
        self.on_complete()

    def unsubscribe(self) -> None:
        """Stop the command listener thread without RQ's wait of up to 60 s at shutdown.

        NOTE: RQ 3.0.0 unsubscribes first and then calls `PubSubWorkerThread.stop()`, which in
        redis-py 8.2.0 joins the thread with no timeout. Without a subscription the thread's
        `get_message(timeout=60)` waits the full 60 s, which happened in 1 of 6 shutdowns here.
        Clearing the thread's run flag first lets the unsubscribe reply end its read.
        """
        if self.pubsub is None or self.pubsub_thread is None:
            return
        self.pubsub_thread.stop(timeout=0)
        self.pubsub.unsubscribe()
        self.pubsub_thread.join(timeout=1)


class _RqWorker:
    def __init__(self, url: str, scheduler: bool, on_complete: Callable[[], None]) -> None:
        self.worker = _CountingWorker([QUEUE_NAME], connection=redis.Redis.from_url(url))
        self.worker.on_complete = on_complete
        self.scheduler = scheduler

    def run(self) -> None:
        # The scheduler, needed only for delayed jobs, runs in a process that RQ forks.
        self.worker.work(logging_level="WARNING", with_scheduler=self.scheduler)

    def request_stop(self) -> None:
        # A warm shutdown, as `rq worker` does on SIGTERM.
        os.kill(os.getpid(), signal.SIGTERM)


def build_worker(
    url: str, concurrency: int, scheduler: bool, on_complete: Callable[[], None]
) -> _RqWorker:
    if concurrency != 1:
        raise ValueError(f"RQ's SimpleWorker runs one job at a time, not {concurrency}")
    return _RqWorker(url, scheduler, on_complete)
