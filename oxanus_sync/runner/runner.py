"""`Runner`: one worker process serving the queues of a `Config`."""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from typing import Any

import redis

from oxanus_sync.client import Client
from oxanus_sync.config import Config
from oxanus_sync.errors import ConfigurationError, OxanusError
from oxanus_sync.queue import Queue, QueueFamily
from oxanus_sync.runner.counters import RunnerStats
from oxanus_sync.runner.cron import CronService
from oxanus_sync.runner.execution import JobExecutor
from oxanus_sync.runner.fetcher import Fetcher
from oxanus_sync.runner.heartbeat import Heartbeat
from oxanus_sync.runner.scheduler import Scheduler
from oxanus_sync.runner.service import Service
from oxanus_sync.runner.signals import StopSignals
from oxanus_sync.runner.watchdog import Watchdog
from oxanus_sync.storage.store import Storage

logger = logging.getLogger(__name__)


class DrainTimeoutError(OxanusError, TimeoutError):
    """`Runner.drain` did not empty the queues in time."""


class Runner:
    """Serves the queues of `config` with threads in this process.

    `context` is passed to every job as `ctx.shared` (default: `config.context`). Use
    `run_forever()` in a worker process, or `drain()` in tests and batch scripts.
    """

    def __init__(
        self, config: Config, *, context: Any = None, client: Client | None = None
    ) -> None:
        config.validate()
        client = client or config.client
        if client is None:
            raise ConfigurationError(
                "no Redis connection: pass Config(client=Client.from_url(url)) or "
                "Runner(config, client=...), or run `oxanus-sync worker` with --url"
            )

        self.config = config
        self.client = client
        self.storage: Storage = client.storage
        self.context = context if context is not None else config.context
        self.process_id = secrets.token_hex(8)
        self.stats = RunnerStats()
        self.stopping = threading.Event()
        # Set once stop() has given up on running jobs: pool threads then stop retrying Redis.
        self.closed = threading.Event()
        self._stop = StopSignals()
        self._started = False

        self.watchdog = Watchdog(storage=self.storage)
        # A queue family is served as one queue, with one fetcher and pool for all its members.
        self.fetchers = [self._fetcher(queue) for queue in config.served()]
        queue_names = self._queue_names()
        settings = config.settings
        self.scheduler = Scheduler(
            storage=self.storage, queues=queue_names, interval_s=settings.scheduler_interval_s
        )
        self.heartbeat = Heartbeat(
            storage=self.storage,
            process_id=self.process_id,
            queues=queue_names,
            settings=settings,
            busy=self.busy,
            concurrency=sum(queue.concurrency for queue in config.served()),
            families={family.name: family.idle_retire_s for family in config.families.values()},
        )
        self.heartbeat.thread_failures = self._failing_threads
        self.cron = (
            CronService(
                storage=self.storage,
                jobs=list(config.cron_jobs.values()),
                signer=client.signer,
                clock_offset_ms=lambda: self.heartbeat.clock_offset_ms,
            )
            if config.cron_jobs
            else None
        )
        self.heartbeat.claimed_ids = self._claimed_ids

    def _fetcher(self, queue: Queue | QueueFamily) -> Fetcher:
        executor = JobExecutor(
            queue=queue,
            config=self.config,
            storage=self.storage,
            process_id=self.process_id,
            shared=self.context,
            stats=self.stats,
            stopping=self.stopping,
            signer=self.client.signer,
            closed=self.closed,
            watchdog=self.watchdog,
        )
        return Fetcher(
            executor=executor,
            storage=self.storage,
            process_id=self.process_id,
            block_timeout_s=self.config.settings.block_timeout_s,
            connection_name=f"{self._connection_prefix()}{queue.name}",
            lease_wait_s=self.config.settings.heartbeat_interval_s / 4,
        )

    def _queue_names(self) -> list[str]:
        """Return the names of the static queues and of the families, as `prefix[*]`."""
        return [queue.name for queue in self.config.served()]

    def _connection_prefix(self) -> str:
        return f"oxanus-fetch-{self.process_id}-"

    def busy(self) -> int:
        """Return the number of jobs this process has claimed and not finished."""
        return sum(fetcher.busy for fetcher in self.fetchers)

    # Lifecycle

    def start(self) -> None:
        """Start the background threads and return; `stop()` ends them."""
        if self._started:
            raise OxanusError("this Runner was already started; create a new Runner to run again")
        self._started = True
        self._warn_about_eviction()

        # A connection of its own, whose short timeout notices a dead link within a beat.
        self.heartbeat.storage = self.storage.with_timeout(
            f"oxanus-heartbeat-{self.process_id}", self.config.settings.heartbeat_interval_s
        )

        self.heartbeat.on_failover = self._reconnect_everything

        # The lease must exist before the first claim, or a peer could reclaim that job.
        self.heartbeat.beat()
        self.heartbeat.reclaim()
        self.storage.register_queues(self._queue_names())
        for thread in self._services():
            thread.start()
        logger.info(
            "runner started process_id=%s pid=%d queues=%s job_types=%d",
            self.process_id,
            os.getpid(),
            ",".join(self._queue_names()),
            len(self.config.job_types),
        )

    def run_forever(self) -> RunnerStats:
        """Run until SIGTERM or SIGINT (or `request_stop()`), then shut down gracefully.

        A second signal exits the process at once with status 1; its jobs are then reclaimed by
        other Runners when its lease expires. Signal handlers are installed only when called
        from the main thread.
        """
        previous = self._stop.install()
        try:
            self.start()
            while not self._stop.requested.wait(1.0):
                pass
            logger.info("stop requested, shutting down process_id=%s", self.process_id)
            stats = self.stop()
        finally:
            self._stop.restore(previous)

        if self.busy():
            # Python cannot stop a thread, so the pool's threads would keep the interpreter alive
            # until their jobs end. Those jobs are already back in their queues.
            logger.warning("exiting with %d jobs still running; they were requeued", self.busy())
            logging.shutdown()
            os._exit(0)
        return stats

    def request_stop(self) -> None:
        """Ask `run_forever()` to shut down gracefully; safe from any thread or signal handler."""
        self._stop.request()

    def drain(self, *, timeout_s: float = 60.0, include_scheduled: bool = False) -> RunnerStats:
        """Process jobs until the queues have nothing ready or running, then stop.

        Jobs scheduled for later are left alone unless `include_scheduled` is set, in which case
        it also waits for every delayed job and retry to come due and run. Raises
        `DrainTimeoutError` after `timeout_s`.
        """
        self.start()
        deadline = time.monotonic() + timeout_s
        try:
            idle_checks = 0
            while idle_checks < 2:
                if time.monotonic() > deadline:
                    raise DrainTimeoutError(f"queues still had jobs after {timeout_s}s of drain")
                time.sleep(0.02)
                idle_checks = idle_checks + 1 if self._is_idle(include_scheduled) else 0
        finally:
            stats = self.stop()
        return stats

    def _is_idle(self, include_scheduled: bool) -> bool:
        if self.busy():
            return False
        pending = self.storage.pending(
            self._queue_names(), self.process_id, include_scheduled=include_scheduled
        )
        return pending == 0 and self.busy() == 0

    def stop(self) -> RunnerStats:
        """Stop fetching, let running jobs finish within the shutdown timeout, give back the rest.

        Returns what this Runner did.
        """
        self.stopping.set()
        for fetcher in self.fetchers:
            fetcher.stop()
        self._wake_fetchers()
        for fetcher in self.fetchers:
            fetcher.join(timeout=self.config.settings.block_timeout_s + 1)

        unfinished = self._wait_for_jobs(self.config.settings.shutdown_timeout_s)
        if unfinished:
            self._give_back_running()
        self.closed.set()

        if self.cron is not None:
            self.cron.stop()
            self.cron.join(timeout=5)
        self.scheduler.stop()
        self.scheduler.join(timeout=5)
        self.watchdog.stop()
        self.watchdog.join(timeout=5)
        self.heartbeat.stop()
        self.heartbeat.join(timeout=5)
        self._release()
        for fetcher in self.fetchers:
            fetcher.close()
        if self.heartbeat.storage is not self.storage:
            self.heartbeat.storage.redis.close()

        stats = self.stats.snapshot()
        logger.info("runner stopped process_id=%s stats=%s", self.process_id, stats)
        return stats

    def _wake_fetchers(self) -> None:
        try:
            self.storage.unblock(self._connection_prefix())
        except Exception as error:  # noqa: BLE001 - fetchers then stop when BLMOVE times out
            logger.debug("could not wake blocked fetchers: %r", error)

    def _wait_for_jobs(self, timeout_s: float) -> int:
        deadline = time.monotonic() + timeout_s
        logged = False
        while (busy := self.busy()) and time.monotonic() < deadline:
            if not logged:
                logger.info("waiting up to %.1fs for %d running jobs to finish", timeout_s, busy)
                logged = True
            time.sleep(0.01)
        return self.busy()

    def _give_back_running(self) -> None:
        for fetcher in self.fetchers:
            executor = fetcher.executor
            for job_id in executor.running_ids():
                try:
                    requeued = self.storage.requeue(executor.queue.name, self.process_id, job_id)
                except redis.RedisError as error:
                    logger.error(
                        "could not return a running job to its queue at shutdown job_id=%s "
                        "queue=%s error=%s: %s; another Runner reclaims it when this "
                        "process's lease expires",
                        job_id,
                        executor.queue.name,
                        type(error).__name__,
                        error,
                    )
                    continue
                if requeued:
                    self.stats.add(requeued=1)
                    logger.warning(
                        "job still running at the shutdown timeout, returned to its queue "
                        "job_id=%s queue=%s; it will run again from the start",
                        job_id,
                        executor.queue.name,
                    )

    def _release(self) -> None:
        try:
            held = self.storage.release(self.process_id, self._queue_names())
        except Exception:
            logger.exception("could not release leases process_id=%s", self.process_id)
            return
        if held:
            logger.warning(
                "jobs remain claimed by this process on queues %s; other Runners will reclaim "
                "them when its lease expires",
                ",".join(held),
            )

    def _reconnect_everything(self) -> None:
        self.storage.reset_connections()
        self.heartbeat.storage.reset_connections()
        for fetcher in self.fetchers:
            fetcher.drop_connection()

    def _services(self) -> list[Service]:
        services: list[Service] = [self.heartbeat, self.scheduler, self.watchdog, *self.fetchers]
        if self.cron is not None:
            services.append(self.cron)
        return services

    def _claimed_ids(self) -> dict[str, set[str]]:
        return {
            fetcher.executor.queue.name: fetcher.executor.claimed_ids() for fetcher in self.fetchers
        }

    def _failing_threads(self) -> dict[str, str]:
        return {thread.name: thread.last_error for thread in self._services() if thread.failures}

    def _warn_about_eviction(self) -> None:
        try:
            reply = self.storage.redis.config_get("maxmemory-policy")
        except Exception:  # noqa: BLE001 - CONFIG may be disabled by ACL or a managed service
            return
        policy = str(next(iter(reply.values()), "")) if reply else ""
        if "allkeys" in policy:
            logger.warning(
                "Redis maxmemory-policy is %s: under memory pressure Redis may evict job keys "
                "and lose jobs; set it to noeviction",
                policy,
            )
        elif "volatile" in policy:
            logger.warning(
                "Redis maxmemory-policy is %s: under memory pressure Redis may evict keys with "
                "a time-to-live, such as throttle windows and RQ-layer job records and results; "
                "set it to noeviction",
                policy,
            )
