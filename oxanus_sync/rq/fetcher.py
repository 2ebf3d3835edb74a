"""`PriorityFetcher`: the one claiming thread of an RQ-layer worker, for all its queues.

It claims from the first queue, in the worker's order, that has a ready job, so a queue is
served only while every queue before it is empty, as in RQ. Redis has no blocking command
that moves a job from the first non-empty of several lists into another list. An idle fetcher
therefore polls with one pipelined LLEN of every queue. Between polls it waits 1 ms, doubling
up to `max_idle_wait_s` (50 ms by default) while the queues stay empty.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

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
                job = self._claim_first()
        finally:
            if job is None:
                self.slots.release()
        if job is None:
            self.stopped.wait(self._idle_wait_s)
            self._idle_wait_s = min(self._idle_wait_s * 2, self.max_idle_wait_s)
            return

        self._idle_wait_s = FIRST_IDLE_WAIT_S
        with self._lock:
            self.running[job.id] = job.queue
            self.last_activity = time.monotonic()
            if self.claims_left is not None:
                self.claims_left -= 1
        self.pool.submit(self._run, job)

    def _claim_first(self) -> ClaimedJob | None:
        lengths = [1]
        if len(self.queues) > 1:
            # One round trip finds the non-empty queues, instead of one claim call per queue.
            pipe = self.storage.redis.pipeline(transaction=False)
            for queue in self.queues:
                pipe.llen(self.storage.keys(queue).ready)
            lengths = pipe.execute()
        for queue, length in zip(self.queues, lengths, strict=True):
            if not length:
                continue
            lease_valid, jobs, _ = self.storage.claim(queue, self.process_id, 1)
            if not lease_valid:
                # Wait for the heartbeat to renew the lease before claiming from this queue.
                logger.debug("lease expired, not claiming queue=%s", queue)
                continue
            if jobs:
                return jobs[0]
        return None

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
