"""`Fetcher`: claims jobs of one queue into this process, never more than the pool has room for."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import redis

from oxanus_sync.runner.execution import JobExecutor
from oxanus_sync.runner.service import Service
from oxanus_sync.storage.records import ClaimedJob
from oxanus_sync.storage.store import Storage

logger = logging.getLogger(__name__)

# Jobs claimed in one script call when a queue has a backlog and several slots are free.
MAX_BATCH = 32


class Fetcher(Service):
    """The claiming thread of one queue, feeding the queue's `ThreadPoolExecutor`.

    A slot of `slots` is taken for every claimed job and given back when the pool thread that
    ran it has no next job. With a backlog it claims as many jobs as there are free slots in one
    script call. With an empty queue, a pool thread blocks in BLMOVE on the fetcher's own
    connection and runs the job it gets, while this thread waits for it. A throttled
    queue claims only through the throttle: when the window is full, the fetcher sleeps until
    the oldest start leaves it, and when the queue is empty it blocks until a job is ready.
    """

    def __init__(
        self,
        *,
        executor: JobExecutor,
        storage: Storage,
        process_id: str,
        block_timeout_s: float,
        connection_name: str,
        lease_wait_s: float = 0.1,
    ) -> None:
        queue = executor.queue
        super().__init__(name=f"oxanus-fetch-{queue.name}")
        self.executor = executor
        self.storage = storage
        self.process_id = process_id
        self.block_timeout_s = block_timeout_s
        self.lease_wait_s = lease_wait_s
        self.connection_name = connection_name
        self.slots = threading.BoundedSemaphore(queue.concurrency)
        self.pool = ThreadPoolExecutor(
            max_workers=queue.concurrency, thread_name_prefix=f"oxanus-{queue.name}"
        )
        self._blocking: redis.Redis | None = None

        # Guards `busy`, the number of claimed jobs not yet finished.
        self._busy_lock = threading.Lock()
        self.busy = 0

    def step(self) -> None:
        if not self.slots.acquire(timeout=0.1):
            return
        reserved = 1 + self._take_free_slots(min(self.executor.queue.concurrency, MAX_BATCH) - 1)

        jobs: list[ClaimedJob] = []
        handed = 0
        try:
            if not self.stopped.is_set():
                jobs, handed = self._claim(reserved)
        finally:
            for _ in range(reserved - len(jobs) - handed):
                self.slots.release()

        self.executor.track(jobs)
        for job in jobs:
            self._submit(job)

    def _claim(self, count: int) -> tuple[list[ClaimedJob], int]:
        """Claim up to `count` jobs; return them and the number of slots handed to a pool thread.

        On an empty queue without a throttle, the BLMOVE runs on a pool thread, which keeps one
        slot and runs the job it gets (see `_wait_in_pool`).
        """
        queue = self.executor.queue
        throttle = queue.config.throttle
        claim = self.storage.claim(queue.name, self.process_id, count, throttle)

        if not claim.lease_valid:
            # BLMOVE cannot check the lease, so wait for the heartbeat to renew it.
            logger.debug("lease expired, not claiming queue=%s", queue.name)
            self.stopped.wait(self.lease_wait_s)
        elif claim.jobs or self.stopped.is_set():
            pass
        elif claim.throttled_ms > 0:
            logger.debug("throttled queue=%s wait_ms=%d", queue.name, claim.throttled_ms)
            self.stopped.wait(claim.throttled_ms / 1000)
        elif throttle is None:
            self._wait_in_pool()
            return [], 1
        else:
            self._wait_until_ready()
        return claim.jobs, 0

    def _take_free_slots(self, limit: int) -> int:
        count = 0
        while count < limit and self.slots.acquire(blocking=False):
            count += 1
        return count

    def _wait_in_pool(self) -> None:
        """Wait for a job in BLMOVE on a pool thread, which then runs the job itself.

        Handing a claimed job from this thread to an idle pool thread costs the time that
        thread takes to wake, 140 to 180 us on a 2-vCPU virtual machine. Waiting on the pool
        thread moves that hand-off before the job arrives. This thread waits until the BLMOVE
        returns, so the queue still has one BLMOVE at a time, and Redis errors are raised here,
        where `Service` logs them and backs off. The slot taken for the job is kept by the
        pool thread, and given back when the BLMOVE returns nothing or the job's chain ends.
        """
        returned = threading.Lock()
        returned.acquire()
        failure: list[BaseException] = []

        def wait_and_run() -> None:
            try:
                jobs = self._wait_for_one()
            except BaseException as error:  # noqa: BLE001 - raised again on the fetcher thread
                failure.append(error)
                jobs = []
            if not jobs:
                self.slots.release()
                returned.release()
                return

            self.executor.track(jobs)
            with self._busy_lock:
                self.busy += 1
            returned.release()
            self._run(jobs[0])

        try:
            self.pool.submit(wait_and_run)
        except RuntimeError:
            # The pool was shut down by close() while this thread was about to wait.
            self.slots.release()
            return
        returned.acquire()
        if failure:
            raise failure[0]

    def _wait_for_one(self) -> list[ClaimedJob]:
        blocking = self._blocking_client()
        try:
            job = self.storage.blocking_claim(
                blocking, self.executor.queue.name, self.process_id, self.block_timeout_s
            )
        except redis.RedisError:
            self._close_blocking()
            raise
        return [job] if job is not None else []

    def _wait_until_ready(self) -> None:
        blocking = self._blocking_client()
        try:
            self.storage.wait_until_ready(blocking, self.executor.queue.name, self.block_timeout_s)
        except redis.RedisError:
            self._close_blocking()
            raise

    def _blocking_client(self) -> redis.Redis:
        if self._blocking is None:
            self._blocking = self.storage.blocking_client(
                self.connection_name, self.block_timeout_s
            )
        return self._blocking

    def _submit(self, job: ClaimedJob) -> None:
        with self._busy_lock:
            self.busy += 1
        self.pool.submit(self._run, job)

    def _run(self, job: ClaimedJob) -> None:
        try:
            self.executor.run_chain(job)
        except Exception:
            # The job's own errors are handled inside run_chain; this is Redis failing while
            # recording the outcome. The job stays in the processing list, covered by the lease.
            logger.exception(
                "could not record the outcome of job_id=%s queue=%s; it stays claimed by this "
                "process and runs again after a restart or reclaim",
                job.id,
                job.queue,
            )
        finally:
            with self._busy_lock:
                self.busy -= 1
            self.slots.release()

    def drop_connection(self) -> None:
        """Close the blocking connection, even from another thread; the next BLMOVE reconnects."""
        blocking = self._blocking
        if blocking is not None:
            blocking.connection_pool.disconnect(inuse_connections=True)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=False)
        self._close_blocking()

    def _close_blocking(self) -> None:
        if self._blocking is not None:
            self._blocking.close()
            self._blocking = None
