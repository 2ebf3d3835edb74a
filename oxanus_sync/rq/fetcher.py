"""`PriorityFetcher`: the one claiming thread of an RQ-layer worker, for all its queues.

It claims from the first queue, in the worker's order, that has a ready job, so a queue is
served only while every queue before it is empty, as in RQ. When every queue is empty, the
fetcher waits on its own connection:

- With one queue, BLMOVE moves the next job from the ready list into this process's
  processing list as soon as one arrives, as the native fetcher does, so the job stays
  crash-safe under the lease.
- With several queues, Redis has no blocking command that moves a job from the first
  non-empty of several lists. The fetcher waits in BLMOVE from the first queue's tail back to
  its tail, which moves nothing and returns when that queue has a job, then polls every queue
  with one pipelined LLEN. The wait lasts 1 ms, doubling up to `max_idle_wait_s` (50 ms by
  default) while the queues stay empty, so a job of the first queue starts at once and a job
  of a later queue within that wait.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import redis

from oxanus_sync.rq.execution import RQExecutor
from oxanus_sync.runner.service import Service
from oxanus_sync.storage.records import ClaimedJob
from oxanus_sync.storage.store import Storage

logger = logging.getLogger(__name__)

FIRST_IDLE_WAIT_S = 0.001


class PriorityFetcher(Service):
    """Claims one job at a time into this process, never more than `concurrency` running."""

    def __init__(
        self,
        *,
        executor: RQExecutor,
        storage: Storage,
        process_id: str,
        queues: Sequence[str],
        concurrency: int,
        max_jobs: int | None = None,
        max_idle_wait_s: float = 0.05,
        block_timeout_s: float = 2.0,
    ) -> None:
        super().__init__(name="oxanus-rq-fetch")
        self.executor = executor
        self.storage = storage
        self.process_id = process_id
        self.queues = list(queues)
        self.slots = threading.BoundedSemaphore(concurrency)
        self.pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="oxanus-rq")
        self.max_idle_wait_s = max_idle_wait_s
        self._idle_wait_s = FIRST_IDLE_WAIT_S
        self.claims_left = max_jobs
        self.block_timeout_s = block_timeout_s
        # The name of the blocking connection in CLIENT LIST, so that stop() can wake it.
        self.connection_name = f"oxanus-rq-fetch-{process_id}"
        self._blocking: redis.Redis | None = None

        # Guards `running` (claimed and unfinished jobs: id -> queue) and the counters.
        self._lock = threading.Lock()
        self.running: dict[str, str] = {}
        self.performed = 0
        self.last_activity = time.monotonic()

    @property
    def busy(self) -> int:
        with self._lock:
            return len(self.running)

    def claimed_ids(self) -> dict[str, set[str]]:
        with self._lock:
            held: dict[str, set[str]] = {queue: set() for queue in self.queues}
            for job_id, queue in self.running.items():
                held[queue].add(job_id)
            return held

    def running_jobs(self) -> list[tuple[str, str]]:
        """Return (queue, id) of every claimed job not yet finished."""
        with self._lock:
            return [(queue, job_id) for job_id, queue in self.running.items()]

    def step(self) -> None:
        if self.claims_left is not None and self.claims_left <= 0:
            self.stopped.wait(0.05)
            return
        if not self.slots.acquire(timeout=0.1):
            return

        job = None
        try:
            if not self.stopped.is_set():
                job = self._claim_or_wait()
        finally:
            if job is None:
                self.slots.release()
        if job is None:
            return

        self._idle_wait_s = FIRST_IDLE_WAIT_S
        with self._lock:
            self.running[job.id] = job.queue
            self.last_activity = time.monotonic()
            if self.claims_left is not None:
                self.claims_left -= 1
        self.pool.submit(self._run, job)

    def _claim_or_wait(self) -> ClaimedJob | None:
        """Claim from the first queue with a ready job, or block until a job may be ready."""
        job, all_empty = self._claim_first()
        if job is not None or self.stopped.is_set():
            return job
        if not all_empty:
            # A queue has jobs that this process may not claim yet (its lease is being
            # renewed, or a peer took the job first): BLMOVE would return at once, so sleep.
            self._sleep_idle()
            return None
        first = self.queues[0]
        try:
            blocking = self._blocking_client()
            if len(self.queues) == 1:
                return self.storage.blocking_claim(
                    blocking, first, self.process_id, self.block_timeout_s
                )
            self.storage.wait_until_ready(blocking, first, self._idle_wait_s)
        except redis.RedisError:
            self._close_blocking()
            raise
        self._idle_wait_s = min(self._idle_wait_s * 2, self.max_idle_wait_s)
        return None

    def _sleep_idle(self) -> None:
        self.stopped.wait(self._idle_wait_s)
        self._idle_wait_s = min(self._idle_wait_s * 2, self.max_idle_wait_s)

    def _claim_first(self) -> tuple[ClaimedJob | None, bool]:
        """Return the claimed job, if any, and whether every queue was empty."""
        lengths = [1]
        if len(self.queues) > 1:
            # One round trip finds the non-empty queues, instead of one claim call per queue.
            pipe = self.storage.redis.pipeline(transaction=False)
            for queue in self.queues:
                pipe.llen(self.storage.keys(queue).ready)
            lengths = pipe.execute()
        all_empty = True
        for queue, length in zip(self.queues, lengths, strict=True):
            if not length:
                continue
            lease_valid, jobs, _ = self.storage.claim(queue, self.process_id, 1)
            if not lease_valid:
                # Wait for the heartbeat to renew the lease before claiming from this queue.
                logger.debug("lease expired, not claiming queue=%s", queue)
                all_empty = False
                continue
            if jobs:
                return jobs[0], False
            # With one queue the claim is the only check: an empty claim means an empty queue.
            all_empty = all_empty and len(self.queues) == 1
        return None, all_empty

    def _blocking_client(self) -> redis.Redis:
        if self._blocking is None:
            self._blocking = self.storage.blocking_client(
                self.connection_name, self.block_timeout_s
            )
        return self._blocking

    def wake(self) -> None:
        """Interrupt a blocking wait, from another thread, so that a stop takes effect now."""
        try:
            self.storage.unblock(self.connection_name)
        except redis.RedisError as error:
            # The wait then ends by its own timeout, at most `block_timeout_s` later.
            logger.debug("could not wake the blocked fetcher: %r", error)

    def _run(self, job: ClaimedJob) -> None:
        performed = False
        try:
            performed = self.executor.perform(job)
        except Exception:
            # The job's own errors are handled by perform(); this is Redis failing while
            # recording the outcome. The job stays claimed, covered by the lease.
            logger.exception(
                "could not record the outcome of job_id=%s queue=%s; it stays claimed by this "
                "process and runs again after a restart or reclaim",
                job.id,
                job.queue,
            )
        finally:
            with self._lock:
                self.running.pop(job.id, None)
                self.performed += int(performed)
                self.last_activity = time.monotonic()
            self.slots.release()

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=False)
        self._close_blocking()

    def _close_blocking(self) -> None:
        if self._blocking is not None:
            self._blocking.close()
            self._blocking = None
