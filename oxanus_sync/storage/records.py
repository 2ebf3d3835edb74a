"""Plain records that storage returns: claimed jobs, queue counts, processes and dead jobs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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


@dataclass(frozen=True)
class QueueCounts:
    """Counts of one queue read in one call. `latency_ms` is the age of its oldest ready job."""

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


@dataclass(frozen=True)
class DeadJob:
    """A job in a dead set, with the error that killed it (`error` is None if none was kept)."""

    queue: str
    id: str
    payload: bytes
    attempt: int
    dead_at_ms: int | None
    error: dict[str, Any] | None


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
