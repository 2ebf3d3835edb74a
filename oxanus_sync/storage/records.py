"""Plain records that storage returns: claimed jobs, queue counts, processes and dead jobs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from oxanus_sync.envelope import Envelope, decode_payload
from oxanus_sync.errors import SerializationError


@dataclass(frozen=True)
class ClaimedJob:
    """A job that this process claimed, with the fields of its hash read in the same call.

    `attempt` counts earlier failed attempts; times are milliseconds on the server's clock.
    """

    queue: str
    id: str
    payload: bytes
    attempt: int
    reclaims: int
    enqueued_at_ms: int | None
    due_at_ms: int | None
    signature: bytes | None = None
    state: bytes | None = None


@dataclass(frozen=True)
class FamilyCounts:
    """The members of a queue family.

    `members` counts the members in the family's registry, which Runners drop once they are
    idle (see `QueueFamily.idle_retire_s`), and `active` those with ready jobs now.
    `biggest_backlogs` maps the members with the most ready jobs to their counts, biggest first.
    """

    members: int
    active: int
    biggest_backlogs: dict[str, int]


@dataclass(frozen=True)
class QueueCounts:
    """Counts of one queue, read in one call.

    `ready`, `scheduled`, `retry` and `dead` are the jobs in each state now (-1 when that key
    holds a value of the wrong type). `running` counts jobs claimed by live Runners and
    `orphaned` those claimed by Runners whose lease expired, until another Runner reclaims
    them. `latency_ms` is the age of the oldest ready job, 0 when none is ready. The other
    fields are counters since the queue was created: `processed` attempts, of which
    `succeeded` and `failed`, and of the failures `retried` and `dead_total` (moved to the
    dead set).

    For a queue family, named `prefix[*]`, the counts cover every member and `family` describes
    the members. For one member, `prefix[key]`, `ready` and `latency_ms` are the member's own and
    the other counts the family's, which keeps one scheduled, retry and dead set for all members.
    """

    queue: str
    ready: int
    scheduled: int
    retry: int
    dead: int
    running: int
    latency_ms: int
    processed: int
    succeeded: int
    failed: int
    retried: int
    dead_total: int
    orphaned: int = 0
    family: FamilyCounts | None = None


@dataclass(frozen=True)
class DeadJob:
    """A job in a dead set, with the error that killed it (`error` is None if none was kept)."""

    queue: str
    id: str
    payload: bytes
    attempt: int
    dead_at_ms: int | None
    error: dict[str, Any] | None

    @property
    def job_type(self) -> str | None:
        """The job type's name, or None when the payload cannot be decoded."""
        envelope = _try_decode(self.payload)
        return envelope.job_type if envelope else None

    @property
    def args(self) -> dict[str, Any] | None:
        """The job's arguments, or None when the payload cannot be decoded."""
        envelope = _try_decode(self.payload)
        return envelope.args if envelope else None


@dataclass(frozen=True)
class ProcessRecord:
    """A live Runner process as recorded by its heartbeat."""

    id: str
    host: str
    pid: int
    queues: list[str]
    busy: int
    concurrency: int
    started_at_ms: int
    last_beat_ms: int
    raw: dict[str, str]


def _try_decode(payload: bytes) -> Envelope | None:
    try:
        return decode_payload(payload)
    except SerializationError:
        return None
