"""Plain records that storage returns: claimed jobs, queue counts, processes and dead jobs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from oxanus_sync.envelope import Envelope, decode_payload
from oxanus_sync.errors import SerializationError


class NewJob(NamedTuple):
    """A job to enqueue: its id, encoded payload and signature (empty when not signed).

    A named tuple, because a bulk enqueue builds one per job and a frozen dataclass takes
    several times longer to build.

    `unique` is the job's field in the queue's unique hash, empty when the job is not unique,
    and `on_conflict` what happens when another job has that field: "skip" or "replace".
    """

    id: str
    payload: bytes
    signature: bytes = b""
    unique: str = ""
    on_conflict: str = "skip"


class ClaimedJob(NamedTuple):
    """A job that this process claimed, with the fields of its hash read in the same call.

    `attempt` counts earlier failed attempts; times are milliseconds on the server's clock.
    `problem` says why the job hash could not be read (a field that is not a number, or no
    payload), in which case the Runner sends the job to the dead set without running it.
    `unique` is the job's field in its queue's unique hash, None for a job without a unique key.
    A named tuple, because the Runner builds one per job.
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
    problem: str | None = None
    unique: bytes | None = None


class Claim(NamedTuple):
    """The result of a claim: whether the process's lease was valid, and the jobs claimed.

    `throttled_ms` is the time until the queue's throttle admits another job when the throttle
    limited the claim, else 0.
    """

    lease_valid: bool
    jobs: list[ClaimedJob]
    throttled_ms: int = 0


@dataclass(frozen=True)
class ThrottleState:
    """A throttle as the stats read it: `used` of `limit` starts taken in the last `window_ms`,
    and `next_start_ms`, the time until another start is admitted (0 when one is now)."""

    limit: int
    window_ms: int
    used: int
    next_start_ms: int


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
    dead set) and `timed_out`, and `cancelled` jobs deleted before they ran.
    `unique_keys` is the number of unique keys that jobs of the queue hold now, and
    `throttle` the state of the queue's throttle, None when no Runner claimed through one in
    the last hour.

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
    cancelled: int = 0
    timed_out: int = 0
    unique_keys: int = 0
    throttle: ThrottleState | None = None
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
