"""The argument of a job's `process` method: the shared application value and job metadata."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from oxanus_sync.errors import JobCancelled

T = TypeVar("T")


class CancelFlag:
    """A flag that the watchdog sets when a running job is cancelled or times out.

    Jobs only read it and nothing waits on it, so a plain attribute does the work of a
    `threading.Event`, which would build a condition variable for each job.
    """

    __slots__ = ("_set",)

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set


@dataclass(frozen=True)
class JobMeta:
    """Metadata of one attempt of a job.

    `attempt` is 1 for the first run and grows by one after each failure. `reclaims` counts how
    often the job was taken back from a Runner that stopped heartbeating while it ran it.
    Times are UTC and come from the Redis server's clock.
    """

    id: str
    queue: str
    job_type: str
    attempt: int
    reclaims: int
    enqueued_at: datetime | None
    scheduled_at: datetime | None


@dataclass(frozen=True)
class Context(Generic[T]):
    """The argument of `Worker.process`.

    `shared` is the value given to `Runner(config, context=...)`, the same object for every job
    of the process (database pools, settings), so it must be safe to use from several threads.
    `state` is the progress value that an earlier attempt of this job saved with `save_state`,
    or None.
    """

    shared: T
    meta: JobMeta
    state: Any = None
    _saver: Callable[[Any], bool] | None = field(default=None, repr=False, compare=False)
    _cancelled: CancelFlag | None = field(default=None, repr=False, compare=False)

    @property
    def cancelled(self) -> bool:
        """Whether the job was cancelled or ran past its timeout; long jobs should check it."""
        return self._cancelled is not None and self._cancelled.is_set()

    def raise_if_cancelled(self) -> None:
        """Raise `JobCancelled` if the job was cancelled or ran past its timeout."""
        if self.cancelled:
            raise JobCancelled(f"job {self.meta.id} was cancelled")

    def save_state(self, value: Any) -> bool:
        """Store `value` as this job's progress, for the next attempt after a failure or crash.

        `value` must be storable like job arguments (JSON, extended to bytes, tuples, dates and
        the other types that arguments accept). It is written at once, one round trip. Returns
        False when this process no longer owns the job (its lease was lost), in which case the
        value is not stored and the job should stop.
        """
        if self._saver is None:
            raise RuntimeError("save_state() needs a job run by a Runner")
        return self._saver(value)

    @property
    def job_id(self) -> str:
        return self.meta.id

    @property
    def queue(self) -> str:
        return self.meta.queue

    @property
    def attempt(self) -> int:
        return self.meta.attempt
