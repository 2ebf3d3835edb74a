"""Celery under the benchmarks: the Redis broker, `apply_async` and one thread-pool worker.

The worker runs in one subprocess as `celery worker --pool threads --concurrency N
--without-mingle --without-gossip --without-heartbeat` would, built with `app.Worker`. Mingle
waits at startup for replies from other workers, and gossip and heartbeats send events to
them. None of them serves a single worker, so they are off. The result backend is disabled
(`task_ignore_result=True`, no `result_backend`), and `worker_prefetch_multiplier` keeps its
default of 4 messages per thread. Tasks keep the default early acknowledgement.

The bulk workload sends a `celery.group` of signatures with `apply_async`. Celery publishes
the group's messages one by one over one producer, with one LPUSH round trip per message.
"""

from __future__ import annotations

import os
import signal
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from celery import Celery, Task, group
from celery.signals import task_postrun

from benchmarks import peer
from benchmarks.peer import QUEUE_NAME, PeerSystem

UNACKED_KEY = "unacked"
"""Hash of the messages that a Celery worker has received and not acknowledged (kombu's default
`unacked_key`)."""


@dataclass(frozen=True)
class _Tasks:
    noop: Task
    sleep: Task
    record_start: Task


def kombu_url(url: str) -> str:
    """Return `url` in kombu's form: a unix socket is "redis+socket:///path"."""
    if url.startswith("unix://"):
        return "redis+socket://" + url.removeprefix("unix://")
    return url


def _create_app(url: str) -> tuple[Celery, _Tasks]:
    app = Celery("bench", broker=kombu_url(url), set_as_current=False)
    app.conf.update(
        task_default_queue=QUEUE_NAME,
        task_ignore_result=True,
        result_backend=None,
        broker_connection_retry_on_startup=True,
        # Keep stdout for the JSON line of the drain worker.
        worker_redirect_stdouts=False,
        worker_hijack_root_logger=False,
    )
    tasks = _Tasks(
        noop=app.task(name="noop")(peer.noop),
        sleep=app.task(name="sleep")(peer.sleep),
        record_start=app.task(name="record_start")(peer.record_start),
    )
    return app, tasks


class CeleryPeer(PeerSystem):
    name = "celery"
    worker_module = "benchmarks.peer_celery"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.app, self.tasks = _create_app(url)

    def close(self) -> None:
        self.app.close()
        super().close()

    def enqueue_one_by_one(self, count: int) -> float:
        noop = self.tasks.noop
        with self._clean_server():
            noop.apply_async((-1,))

            started = time.perf_counter()
            for index in range(count):
                noop.apply_async((index,))
            return time.perf_counter() - started

    def enqueue_bulk(self, count: int) -> float:
        noop = self.tasks.noop
        with self._clean_server():
            noop.apply_async((-1,))

            started = time.perf_counter()
            group(noop.s(index) for index in range(count)).apply_async()
            return time.perf_counter() - started

    def enqueue_for_drain(self, count: int, job_sleep_s: float) -> None:
        if job_sleep_s > 0:
            signatures = [self.tasks.sleep.s(job_sleep_s) for _ in range(count)]
        else:
            signatures = [self.tasks.noop.s(index) for index in range(count)]
        group(signatures).apply_async()

    def enqueue_record_start(self, reference: float, result_key: str) -> None:
        self.tasks.record_start.apply_async((reference, result_key))

    def enqueue_record_start_in(self, delay_s: float, reference: float, result_key: str) -> None:
        self.tasks.record_start.apply_async((reference, result_key), countdown=delay_s)

    def pending_jobs(self) -> int:
        return int(self.redis.llen(QUEUE_NAME)) + int(self.redis.hlen(UNACKED_KEY))


class _CeleryWorker:
    def __init__(self, url: str, concurrency: int, on_complete: Callable[[], None]) -> None:
        self.app, _ = _create_app(url)

        def count_completion(*args: Any, **kwargs: Any) -> None:
            on_complete()

        task_postrun.connect(count_completion, weak=False)
        # The benchmarks run as whatever user starts them; a worker started as root warns.
        warnings.filterwarnings("ignore", message="You're running the worker with superuser")
        self.worker = self.app.Worker(
            pool_cls="threads",
            concurrency=concurrency,
            loglevel="WARNING",
            quiet=True,
            without_mingle=True,
            without_gossip=True,
            without_heartbeat=True,
        )

    def run(self) -> None:
        self.worker.start()

    def request_stop(self) -> None:
        # SIGTERM is Celery's warm shutdown: it waits for the running tasks.
        os.kill(os.getpid(), signal.SIGTERM)


def build_worker(
    url: str, concurrency: int, scheduler: bool, on_complete: Callable[[], None]
) -> _CeleryWorker:
    # Celery needs no separate scheduler for countdown tasks: the worker receives them at
    # once and keeps them in its timer until they are due.
    return _CeleryWorker(url, concurrency, on_complete)
