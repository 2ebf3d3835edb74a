"""Dramatiq under the benchmarks: a `RedisBroker`, `Actor.send` and one in-process `Worker`.

The `dramatiq` command starts one worker process per CPU, each with 8 threads. These
benchmarks build the same `dramatiq.Worker` in one subprocess, with as many threads as the
workload's concurrency, the broker's default middleware and the default worker timeout
(1 s). While its queue is empty, Dramatiq's Redis consumer polls with a growing backoff, up
to that timeout.

Dramatiq 2.2 has no bulk enqueue: `dramatiq.group(...).run()` calls `Broker.enqueue` once per
message. The bulk workload sends the same `enqueue` script calls as `RedisBroker.enqueue`,
through a second `RedisBroker` whose client is a redis-py pipeline, in one round trip.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware

from benchmarks import peer
from benchmarks.peer import QUEUE_NAME, PeerSystem

BULK_BATCH = 1000
"""Messages per pipeline when enqueueing for a drain, untimed."""

_STOP_POLL_INTERVAL_S = 0.5


@dataclass(frozen=True)
class _Actors:
    noop: dramatiq.Actor[Any, Any]
    sleep: dramatiq.Actor[Any, Any]
    record_start: dramatiq.Actor[Any, Any]


def _declare_actors(broker: RedisBroker) -> _Actors:
    """Declare the benchmark jobs as actors of `broker`, with Dramatiq's default options."""
    return _Actors(
        noop=dramatiq.actor(peer.noop, broker=broker, queue_name=QUEUE_NAME, actor_name="noop"),
        sleep=dramatiq.actor(peer.sleep, broker=broker, queue_name=QUEUE_NAME, actor_name="sleep"),
        record_start=dramatiq.actor(
            peer.record_start, broker=broker, queue_name=QUEUE_NAME, actor_name="record_start"
        ),
    )


class Dramatiq(PeerSystem):
    name = "dramatiq"
    worker_module = "benchmarks.peer_dramatiq"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.broker = RedisBroker(url=url)
        self.actors = _declare_actors(self.broker)

    def close(self) -> None:
        self.broker.close()
        super().close()

    def enqueue_one_by_one(self, count: int) -> float:
        noop = self.actors.noop
        with self._clean_server():
            noop.send(-1)

            started = time.perf_counter()
            for index in range(count):
                noop.send(index)
            return time.perf_counter() - started

    def enqueue_bulk(self, count: int) -> float:
        noop = self.actors.noop
        with self._clean_server():
            noop.send(-1)

            started = time.perf_counter()
            self._enqueue_pipelined([noop.message(index) for index in range(count)])
            return time.perf_counter() - started

    def enqueue_for_drain(self, count: int, job_sleep_s: float) -> None:
        for first in range(0, count, BULK_BATCH):
            batch = range(first, min(first + BULK_BATCH, count))
            if job_sleep_s > 0:
                messages = [self.actors.sleep.message(job_sleep_s) for _ in batch]
            else:
                messages = [self.actors.noop.message(index) for index in batch]
            self._enqueue_pipelined(messages)

    def enqueue_record_start(self, reference: float, result_key: str) -> None:
        self.actors.record_start.send(reference, result_key)

    def enqueue_record_start_in(self, delay_s: float, reference: float, result_key: str) -> None:
        self.actors.record_start.send_with_options(
            args=(reference, result_key), delay=round(delay_s * 1000)
        )

    def pending_jobs(self) -> int:
        # The "qsize" command counts the messages of the queue and of its delay queue that
        # are not acknowledged yet.
        return int(self.broker.do_qsize(QUEUE_NAME))

    def _enqueue_pipelined(self, messages: list[dramatiq.Message[Any]]) -> None:
        """Enqueue `messages` with `RedisBroker.enqueue` on a broker whose client is a pipeline."""
        # RedisBroker caches the Lua stack limit at class level on its first enqueue. It must
        # come from a real connection: on a pipeline the call would only be queued.
        self.broker._max_unpack_size()
        with self.broker.client.pipeline(transaction=False) as pipeline:
            pipelined_broker = RedisBroker(client=pipeline, namespace=self.broker.namespace)
            for message in messages:
                pipelined_broker.enqueue(message)
            pipeline.execute()


class _CountAcks(Middleware):
    """Calls `on_complete` after the worker has acknowledged a message."""

    def __init__(self, on_complete: Callable[[], None]) -> None:
        self.on_complete = on_complete

    def after_ack(self, broker: dramatiq.Broker, message: dramatiq.Message[Any]) -> None:
        self.on_complete()


class _DramatiqWorker:
    def __init__(self, url: str, concurrency: int, on_complete: Callable[[], None]) -> None:
        self.broker = RedisBroker(url=url)
        _declare_actors(self.broker)
        self.broker.add_middleware(_CountAcks(on_complete))
        self.worker = dramatiq.Worker(self.broker, worker_threads=concurrency)
        self.stop_requested = threading.Event()

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._handle_sigterm)
        self.worker.start()
        while not self.stop_requested.wait(_STOP_POLL_INTERVAL_S):
            pass
        self.worker.stop()
        self.broker.close()

    def request_stop(self) -> None:
        self.stop_requested.set()

    def _handle_sigterm(self, signum: int, frame: FrameType | None) -> None:
        self.stop_requested.set()


def build_worker(
    url: str, concurrency: int, scheduler: bool, on_complete: Callable[[], None]
) -> _DramatiqWorker:
    # Dramatiq's delayed messages need no separate scheduler: the worker consumes the delay
    # queue and keeps each message until it is due.
    return _DramatiqWorker(url, concurrency, on_complete)
