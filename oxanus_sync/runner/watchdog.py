"""`Watchdog`: enforces job timeouts and passes cancellation requests to running jobs.

Python cannot stop a thread. At a job's deadline the watchdog records the attempt as timed out
at once, so the retry policy applies on time. It also sets the job's cancellation flag for code
that checks it, and raises `JobTimeout` inside the job's thread with `PyThreadState_SetAsyncExc`
(CPython only). Pure-Python code stops at its next bytecode. A thread blocked in C code (a
socket read, `time.sleep`, a C extension) only gets the exception when that call returns: until
then it keeps its pool slot, and whatever it returns later is discarded.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections.abc import Callable

from oxanus_sync.context import CancelFlag
from oxanus_sync.errors import JobTimeout
from oxanus_sync.runner.service import Service
from oxanus_sync.storage.records import ClaimedJob
from oxanus_sync.storage.store import Storage
from oxanus_sync.worker import Worker

logger = logging.getLogger(__name__)

# How often the watchdog reads from Redis whether running jobs were cancelled.
CANCEL_POLL_S = 0.5


class Watch:
    """One running job under watch.

    `lock` guards `running` and `timed_out`: the watchdog raises into the thread only while
    `running` is true, and the job's thread clears it as soon as `process()` returns. A plain
    class with slots, because the Runner builds one per job.
    """

    __slots__ = (
        "cancelled",
        "deadline",
        "instance",
        "job",
        "lock",
        "record_timeout",
        "running",
        "thread_id",
        "timed_out",
    )

    def __init__(
        self,
        *,
        job: ClaimedJob,
        instance: Worker,
        thread_id: int,
        deadline: float | None,
        record_timeout: Callable[[], None],
    ) -> None:
        self.job = job
        self.instance = instance
        self.thread_id = thread_id
        self.deadline = deadline
        self.record_timeout = record_timeout
        self.cancelled = CancelFlag()
        self.lock = threading.Lock()
        self.running = True
        self.timed_out = False

    def leave(self) -> None:
        """Mark `process()` as returned, dropping a timeout raised too late to matter."""
        with self.lock:
            self.running = False
            if self.timed_out:
                _raise_in_thread(self.thread_id, None)


class Watchdog(Service):
    """Watches running jobs for their deadline and for cancellation requests."""

    def __init__(self, *, storage: Storage, poll_s: float = 0.02) -> None:
        super().__init__(name="oxanus-watchdog")
        self.storage = storage
        self.poll_s = poll_s

        # Guards `_watches`, the running jobs by id.
        self._lock = threading.Lock()
        self._watches: dict[str, Watch] = {}
        self._polled_at = 0.0

    def watch(self, watch: Watch) -> None:
        with self._lock:
            self._watches[watch.job.id] = watch

    def unwatch(self, watch: Watch) -> None:
        with self._lock:
            self._watches.pop(watch.job.id, None)

    def step(self) -> None:
        now = time.monotonic()
        with self._lock:
            watches = list(self._watches.values())

        for watch in watches:
            if watch.deadline is not None and now >= watch.deadline:
                self._time_out(watch)
        if watches and now - self._polled_at >= CANCEL_POLL_S:
            self._polled_at = now
            self._poll_cancellations(watches)
        self.stopped.wait(self.poll_s)

    def _time_out(self, watch: Watch) -> None:
        with watch.lock:
            if not watch.running or watch.timed_out:
                return
            watch.timed_out = True
            watch.cancelled.set()
            _raise_in_thread(watch.thread_id, JobTimeout)
        self.unwatch(watch)
        watch.record_timeout()

    def _poll_cancellations(self, watches: list[Watch]) -> None:
        requested = self.storage.cancel_requested([(w.job.queue, w.job.id) for w in watches])
        for watch, cancelled in zip(watches, requested, strict=True):
            if cancelled and not watch.cancelled.is_set():
                logger.info(
                    "cancellation requested for running job job_id=%s queue=%s type=%s",
                    watch.job.id,
                    watch.job.queue,
                    watch.instance.job_name,
                )
                watch.cancelled.set()


def _raise_in_thread(thread_id: int, exception: type[BaseException] | None) -> None:
    # NOTE: PyThreadState_SetAsyncExc is a CPython API; other interpreters only get the
    # cooperative flag and the on-time timeout record.
    target = ctypes.py_object(exception) if exception is not None else None
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), target)
