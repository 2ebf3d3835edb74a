"""The argument of a job's `process` method: the shared application value and job metadata."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

T = TypeVar("T")


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
    """

    shared: T
    meta: JobMeta

    @property
    def job_id(self) -> str:
        return self.meta.id

    @property
    def queue(self) -> str:
        return self.meta.queue

    @property
    def attempt(self) -> int:
        return self.meta.attempt
