"""`Worker` and `SimpleWorker`: RQ's worker API on this library's threads, leases and reclaim.

A worker runs one job at a time by default, as RQ does. Code that relies on one worker per
queue running one job at a time therefore stays safe. `concurrency=N` runs up to N jobs at once
on a thread pool. Jobs run in threads of this process, never in a forked child. The worker renews a
lease on each of its queues every second, so the jobs of a worker that crashed run again on
another worker within about 6 s (`RunnerSettings.lease_s` plus one heartbeat), where RQ marks
them failed as abandoned.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

import redis

from oxanus_sync.config import RunnerSettings
from oxanus_sync.errors import ConfigurationError
from oxanus_sync.queue import validate_queue_name
from oxanus_sync.rq.connections import as_client
from oxanus_sync.rq.execution import DEFAULT_RESULT_TTL, ExceptionHandler, RQExecutor
from oxanus_sync.rq.fetcher import PriorityFetcher
from oxanus_sync.rq.functions import FunctionPolicy
from oxanus_sync.rq.queue import Queue
from oxanus_sync.rq.serializers import resolve_serializer
from oxanus_sync.runner.heartbeat import Heartbeat
from oxanus_sync.runner.scheduler import Scheduler
from oxanus_sync.runner.service import Service
from oxanus_sync.runner.signals import StopSignals
from oxanus_sync.runner.watchdog import Watchdog

logger = logging.getLogger(__name__)

# How often work() checks the burst, max_jobs and max_idle_time conditions.
_CHECK_INTERVAL_S = 0.02


class Worker:
    """Serves `queues` (names or `Queue` objects) in strict priority order.

    Arguments beyond RQ's: `concurrency` is the number of jobs run at once (1 by default).
    `allowed_modules` limits the functions a payload may name to those module prefixes, and
    builtins and the standard library are always rejected. `settings` sets the leases, the
    shutdown timeout and the other timings of `oxanus_sync.RunnerSettings`.
    """

    def __init__(
        self,
        queues: Sequence[Queue | str] | Queue | str,
        name: str | None = None,
        default_result_ttl: int = DEFAULT_RESULT_TTL,
        connection: Any = None,
        exception_handlers: Sequence[ExceptionHandler] | ExceptionHandler | None = None,
        disable_default_exception_handler: bool = False,
        serializer: object = None,
        *,
        concurrency: int = 1,
        allowed_modules: Sequence[str] | None = None,
        settings: RunnerSettings | None = None,
        **kwargs: Any,
    ) -> None:
        items = [queues] if isinstance(queues, Queue | str) else list(queues)
        if not items:
            raise ConfigurationError("a Worker needs at least one queue")
        if connection is None:
            found = next((item for item in items if isinstance(item, Queue)), None)
            if found is None:
                raise TypeError("Worker() needs connection= when queues are given by name")
            connection = found._client
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigurationError(
                f"invalid concurrency {concurrency!r}: use the number of jobs to run at once, "
                "1 or more"
            )

        self._client = as_client(connection)
        self.connection = self._client.redis
        self.queues = [
            item if isinstance(item, Queue) else Queue(validate_queue_name(item), self._client)
            for item in items
        ]
        self.name = name or uuid.uuid4().hex
        self.default_result_ttl = default_result_ttl
        if exception_handlers is None:
            handlers: list[ExceptionHandler] = []
        elif callable(exception_handlers):
            handlers = [exception_handlers]
        else:
            handlers = list(exception_handlers)
        self.exception_handlers = handlers
        self.disable_default_exception_handler = disable_default_exception_handler
        self.serializer = resolve_serializer(serializer)
        self.concurrency = concurrency
        self.policy = FunctionPolicy(allowed_modules)
        self.settings = settings or RunnerSettings()
        self.successful_job_count = 0
        self._stop = StopSignals(
            b"oxanus_sync: stop signal, finishing running jobs (again to exit now)\n"
        )

    def queue_names(self) -> list[str]:
        return [queue.name for queue in self.queues]

    def request_stop(self) -> None:
        """Ask `work()` to stop after the running jobs; safe from any thread."""
        self._stop.request()

    def work(
        self,
        burst: bool = False,
        logging_level: str | None = None,
        date_format: str | None = None,
        log_format: str | None = None,
        max_jobs: int | None = None,
        max_idle_time: float | None = None,
        with_scheduler: bool = False,
        dequeue_strategy: str = "default",
        **kwargs: Any,
    ) -> bool:
        """Process jobs until stopped; return whether any job ran.

        `burst` stops once the queues have no ready job and nothing runs. `max_jobs` stops
        after that many jobs, and `max_idle_time` after that many seconds without a job. A
        first SIGTERM or SIGINT stops taking jobs and lets running ones finish within
        `settings.shutdown_timeout_s`. A second one exits at once with status 1. Signal
        handlers are installed only from the main thread, so from another thread call
        `request_stop()`. `with_scheduler` is accepted for compatibility, because scheduled
        jobs and retries always move to their queues when due.
        """
        if dequeue_strategy != "default":
            raise ConfigurationError(
                f"dequeue_strategy {dequeue_strategy!r} is not supported: this worker serves "
                "its queues in strict priority order (dequeue_strategy='default')"
            )
        session = _Session(self, max_jobs)
        previous = self._stop.install()
        try:
            session.start()
            self._wait(session, burst, max_idle_time)
        finally:
            session.stop()
            self._stop.restore(previous)
        self.successful_job_count += session.fetcher.performed
        return session.fetcher.performed > 0

    def _wait(self, session: _Session, burst: bool, max_idle_time: float | None) -> None:
        idle_checks = 0
        while not self._stop.requested.wait(_CHECK_INTERVAL_S):
            fetcher = session.fetcher
            if fetcher.claims_left is not None and fetcher.claims_left <= 0 and not fetcher.busy:
                logger.info("worker %s stopping: max_jobs reached", self.name)
                return
            idle_s = time.monotonic() - fetcher.last_activity
            if max_idle_time is not None and not fetcher.busy and idle_s > max_idle_time:
                logger.info("worker %s stopping: idle for %.1fs", self.name, idle_s)
                return
            if burst:
                idle_checks = idle_checks + 1 if session.is_idle() else 0
                if idle_checks >= 2:
                    logger.info("worker %s stopping: burst finished", self.name)
                    return


class SimpleWorker(Worker):
    """The same worker as `Worker`: neither forks, so RQ's distinction does not apply."""


class _Session:
    """The threads of one `Worker.work()` call, from start to stop."""

    def __init__(self, worker: Worker, max_jobs: int | None) -> None:
        client = worker._client
        self.worker = worker
        self.storage = client.storage
        self.settings = worker.settings
        self.queues = worker.queue_names()
        self.process_id = secrets.token_hex(8)
        self.closed = threading.Event()
        self.watchdog = Watchdog(storage=self.storage)
        executor = RQExecutor(
            client=client,
            process_id=self.process_id,
            worker_name=worker.name,
            serializer=worker.serializer,
            policy=worker.policy,
            default_result_ttl=worker.default_result_ttl,
            exception_handlers=worker.exception_handlers,
            disable_default_exception_handler=worker.disable_default_exception_handler,
            settings=self.settings,
            watchdog=self.watchdog,
            closed=self.closed,
        )
        self.fetcher = PriorityFetcher(
            executor=executor,
            storage=self.storage,
            process_id=self.process_id,
            queues=self.queues,
            concurrency=worker.concurrency,
            max_jobs=max_jobs,
            block_timeout_s=self.settings.block_timeout_s,
        )
        self.scheduler = Scheduler(
            storage=self.storage, queues=self.queues, interval_s=self.settings.scheduler_interval_s
        )
        self.heartbeat = Heartbeat(
            storage=self.storage,
            process_id=self.process_id,
            queues=self.queues,
            settings=self.settings,
            busy=lambda: self.fetcher.busy,
            concurrency=worker.concurrency,
        )
        self.heartbeat.claimed_ids = self.fetcher.claimed_ids
        self.services: list[Service] = [self.heartbeat, self.scheduler, self.watchdog, self.fetcher]
        self._started = False

    def start(self) -> None:
        self.heartbeat.storage = self.storage.with_timeout(
            f"oxanus-heartbeat-{self.process_id}", self.settings.heartbeat_interval_s
        )
        # The lease must exist before the first claim, or a peer could reclaim that job.
        self.heartbeat.beat()
        self.heartbeat.reclaim()
        self.storage.register_queues(self.queues)
        for service in self.services:
            service.start()
        self._started = True
        logger.info(
            "worker %s started process_id=%s pid=%d queues=%s concurrency=%d",
            self.worker.name,
            self.process_id,
            os.getpid(),
            ",".join(self.queues),
            self.worker.concurrency,
        )

    def is_idle(self) -> bool:
        if self.fetcher.busy:
            return False
        pending = self.storage.pending(self.queues, self.process_id, include_scheduled=False)
        return pending == 0 and self.fetcher.busy == 0

    def stop(self) -> None:
        if not self._started:
            return
        self.fetcher.stop()
        # Wake it more than once: it may enter BLMOVE just after a wake-up.
        deadline = time.monotonic() + self.settings.block_timeout_s + 5
        while self.fetcher.is_alive() and time.monotonic() < deadline:
            self.fetcher.wake()
            self.fetcher.join(timeout=0.1)
        self._wait_for_jobs()
        self.closed.set()
        for service in (self.scheduler, self.watchdog, self.heartbeat):
            service.stop()
            service.join(timeout=5)
        self._release()
        self.fetcher.close()
        self.heartbeat.storage.redis.close()
        logger.info(
            "worker %s stopped process_id=%s jobs=%d",
            self.worker.name,
            self.process_id,
            self.fetcher.performed,
        )

    def _wait_for_jobs(self) -> None:
        deadline = time.monotonic() + self.settings.shutdown_timeout_s
        while self.fetcher.busy and time.monotonic() < deadline:
            time.sleep(0.01)
        for queue, job_id in self.fetcher.running_jobs():
            try:
                requeued = self.storage.requeue(queue, self.process_id, job_id)
            except redis.RedisError as error:
                logger.error(
                    "could not return a running job to its queue at shutdown job_id=%s "
                    "queue=%s error=%s; another worker reclaims it when this lease expires",
                    job_id,
                    queue,
                    error,
                )
                continue
            if requeued:
                logger.warning(
                    "job still running at the shutdown timeout, returned to its queue "
                    "job_id=%s queue=%s; it will run again from the start",
                    job_id,
                    queue,
                )

    def _release(self) -> None:
        try:
            held = self.storage.release(self.process_id, self.queues)
        except redis.RedisError:
            logger.exception("could not release leases process_id=%s", self.process_id)
            return
        if held:
            logger.warning(
                "jobs remain claimed by this worker on queues %s; other workers reclaim them "
                "when its lease expires",
                ",".join(held),
            )
