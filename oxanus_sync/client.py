"""`Client`: enqueue jobs and inspect queues. Web apps import this, never the Runner."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis

from oxanus_sync.envelope import encode_job
from oxanus_sync.errors import ConfigurationError, EnqueueError
from oxanus_sync.queue import Queue, validate_queue_name
from oxanus_sync.storage.keys import DEFAULT_NAMESPACE
from oxanus_sync.storage.records import DeadJob, ProcessRecord, QueueCounts
from oxanus_sync.storage.store import Storage
from oxanus_sync.worker import Worker

QueueRef = Queue | str
Delay = float | int | timedelta


class Client:
    """A handle on one Redis namespace, safe to share between threads.

    Build it from a URL with `Client.from_url("redis://localhost:6379/0")`, or from an existing
    `redis.Redis` made with `decode_responses=False` (the default).
    """

    def __init__(self, connection: redis.Redis, *, namespace: str = DEFAULT_NAMESPACE) -> None:
        _check_connection(connection)
        if not namespace or "{" in namespace or "}" in namespace:
            raise ConfigurationError(
                f"invalid namespace {namespace!r}: use a non-empty name without braces"
            )

        self.redis = connection
        self.namespace = namespace
        self.storage = Storage(connection, namespace)
        self._registered_queues: set[str] = set()

    @classmethod
    def from_url(cls, url: str, *, namespace: str = DEFAULT_NAMESPACE, **options: Any) -> Client:
        """Connect to `url` (redis://, rediss:// or unix://); `options` go to `redis.Redis`."""
        try:
            connection = redis.Redis.from_url(url, **options)
        except ValueError as error:
            raise ConfigurationError(
                f"invalid Redis URL {redact_url(url)!r}: {error}. Expected redis://host:port/db, "
                "rediss://host:port/db or unix:///path/to/redis.sock"
            ) from error
        return cls(connection, namespace=namespace)

    def close(self) -> None:
        self.redis.close()

    # Enqueue

    def enqueue(self, queue: QueueRef, job: Worker) -> str:
        """Enqueue `job` to run as soon as a Runner takes it; return its id."""
        return self._enqueue(queue, [job], ("now", 0))[0]

    def enqueue_in(self, queue: QueueRef, job: Worker, delay: Delay) -> str:
        """Enqueue `job` to run after `delay` (seconds or a timedelta); return its id."""
        return self._enqueue(queue, [job], ("in", _delay_ms(delay)))[0]

    def enqueue_at(self, queue: QueueRef, job: Worker, when: datetime) -> str:
        """Enqueue `job` to run at `when`, a timezone-aware datetime; return its id."""
        return self._enqueue(queue, [job], ("at", _timestamp_ms(when)))[0]

    def enqueue_many(
        self, queue: QueueRef, jobs: Iterable[Worker], *, delay: Delay | None = None
    ) -> list[str]:
        """Enqueue many jobs in one round trip per 1,000 jobs; return their ids in order."""
        when = ("now", 0) if delay is None else ("in", _delay_ms(delay))
        return self._enqueue(queue, list(jobs), when)

    def _enqueue(self, queue: QueueRef, jobs: Sequence[Worker], when: tuple[str, int]) -> list[str]:
        name = _queue_name(queue)
        for job in jobs:
            if not isinstance(job, Worker):
                raise EnqueueError(
                    f"cannot enqueue {job!r}: expected an instance of a Worker subclass"
                )
        entries = [(uuid.uuid4().hex, encode_job(job)) for job in jobs]
        if not entries:
            return []

        self._register(name)
        self.storage.enqueue(name, entries, when)
        return [job_id for job_id, _ in entries]

    def _register(self, queue: str) -> None:
        if queue not in self._registered_queues:
            self.storage.register_queues([queue])
            self._registered_queues.add(queue)

    # Inspection

    def server_time_ms(self) -> int:
        """Return the Redis server's clock in milliseconds, the clock of every stored time."""
        return self.storage.server_time_ms()

    def queues(self) -> list[str]:
        """Return the names of every queue a Runner served or a Client enqueued to."""
        return self.storage.known_queues()

    def stats(self, queues: Sequence[QueueRef] | None = None) -> list[QueueCounts]:
        """Return the counts of `queues` (every known queue by default), one round trip."""
        names = [_queue_name(q) for q in queues] if queues is not None else self.queues()
        return self.storage.queue_counts(names)

    def processes(self) -> list[ProcessRecord]:
        """Return the live Runner processes of this namespace."""
        return self.storage.processes()

    def job(self, queue: QueueRef, job_id: str) -> dict[str, bytes]:
        """Return the raw fields of a job's hash, or {} when the job no longer exists."""
        return self.storage.job_fields(_queue_name(queue), job_id)

    # Dead set

    def dead_jobs(self, queue: QueueRef, *, offset: int = 0, limit: int = 100) -> list[DeadJob]:
        """Return dead jobs of `queue`, newest first, with the error that killed each."""
        return self.storage.dead_jobs(_queue_name(queue), offset, limit)

    def retry_dead(self, queue: QueueRef, job_ids: Sequence[str]) -> int:
        """Move dead jobs back to the ready list with a fresh retry budget; return how many."""
        return self.storage.dead_retry(_queue_name(queue), job_ids)

    def delete_dead(self, queue: QueueRef, job_ids: Sequence[str]) -> int:
        """Delete dead jobs; return how many were deleted."""
        return self.storage.dead_delete(_queue_name(queue), job_ids)

    def purge_dead(self, queue: QueueRef) -> int:
        """Delete every dead job of `queue`; return how many were deleted."""
        return self.storage.dead_delete(_queue_name(queue), None)


def redact_url(url: str) -> str:
    """Return `url` with its password, if any, replaced by "***"."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if not password:
        return url
    credentials, _, address = parts.netloc.rpartition("@")
    username = credentials.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{username}:***@{address}"))


def _check_connection(connection: object) -> None:
    if not isinstance(connection, redis.Redis):
        raise ConfigurationError(
            f"expected a redis.Redis instance, got {type(connection).__name__}; "
            "use Client.from_url(url) to connect from a URL"
        )
    if connection.connection_pool.connection_kwargs.get("decode_responses"):
        raise ConfigurationError(
            "the redis.Redis given to Client was made with decode_responses=True; oxanus_sync "
            "stores payloads as bytes, so create it with decode_responses=False (the default)"
        )


def _queue_name(queue: QueueRef) -> str:
    return queue.name if isinstance(queue, Queue) else validate_queue_name(queue)


def _delay_ms(delay: Delay) -> int:
    seconds = delay.total_seconds() if isinstance(delay, timedelta) else delay
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise EnqueueError(f"invalid delay {delay!r}: pass seconds as a number or a timedelta")
    if not math.isfinite(seconds):
        raise EnqueueError(f"invalid delay {delay!r}: pass a finite number of seconds")
    if seconds < 0:
        raise EnqueueError(f"invalid delay {delay!r}: a delay cannot be negative")
    return round(seconds * 1000)


def _timestamp_ms(when: datetime) -> int:
    if not isinstance(when, datetime):
        raise EnqueueError(f"invalid time {when!r}: pass a timezone-aware datetime")
    if when.tzinfo is None or when.utcoffset() is None:
        raise EnqueueError(
            f"naive datetime {when.isoformat()} has no time zone, so its moment is ambiguous; "
            "pass an aware one, for example datetime.now(timezone.utc) + timedelta(minutes=5) "
            "or when.replace(tzinfo=ZoneInfo('Europe/Paris'))"
        )
    return round(when.timestamp() * 1000)
