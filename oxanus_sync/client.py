"""`Client`: enqueue jobs and inspect queues. Web apps import this, never the Runner."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool

from oxanus_sync.envelope import encode_job
from oxanus_sync.errors import (
    ConfigurationError,
    EnqueueError,
    NotReplicatedError,
    OxanusError,
    RedisUnavailableError,
)
from oxanus_sync.queue import (
    WHOLE_FAMILY,
    Queue,
    QueueFamily,
    QueueRef,
    member_name,
    resolve_queue_name,
    split_member_name,
)
from oxanus_sync.sentinel import SYNTAX as SENTINEL_SYNTAX
from oxanus_sync.sentinel import is_sentinel_url, parse_sentinel_url
from oxanus_sync.signing import Signer
from oxanus_sync.storage.keys import DEFAULT_NAMESPACE
from oxanus_sync.storage.records import DeadJob, NewJob, ProcessRecord, QueueCounts
from oxanus_sync.storage.store import PartialEnqueue, Storage
from oxanus_sync.unique import Enqueued, EnqueueOutcome, unique_field
from oxanus_sync.validation import check_integer
from oxanus_sync.worker import Worker

Delay = float | int | timedelta


# Connection defaults of Client.from_url. A call to an unreachable server fails after at most
# 3 tries: about 3 * 2 s when nothing accepts the connection, 3 * 5 s when the link dies
# mid-command, or at once when the connection is refused.
CONNECT_TIMEOUT_S = 2.0
COMMAND_TIMEOUT_S = 5.0
RETRIES = 2

DEFAULT_MAX_PAYLOAD_BYTES = 512 * 1024
MAX_DELAY_S = 100 * 365 * 24 * 3600.0

DEFAULT_WAIT_TIMEOUT_MS = 1000
# Time between the end of a WAIT and the socket timeout, left for its reply to arrive.
WAIT_REPLY_MARGIN_S = 0.5
# Job ids quoted in the message of a NotReplicatedError; enqueued_ids contains all of them.
QUOTED_IDS = 5

# Names of static queues a Client remembers as checked (see Client._enqueue_queue_name).
STATIC_NAMES_KEPT = 1024


class Client:
    """A handle on one Redis namespace, safe to share between threads.

    Build it from a URL with `Client.from_url("redis://localhost:6379/0")`, from a Sentinel
    with `Client.from_sentinel`, or from an existing `redis.Redis` made with
    `decode_responses=False` (the default).

    `max_payload_bytes` bounds the size of one job's encoded arguments. With `signing_keys`,
    newest first, payloads are signed at enqueue, and a Runner built on this client runs only
    payloads signed with one of the keys (see `oxanus_sync.signing`).

    With `wait_replicas` above 0, every enqueue ends with `WAIT wait_replicas wait_timeout_ms`
    on the connection that stored the jobs, and raises `NotReplicatedError` when fewer
    replicas acknowledged them in time. A job whose enqueue returned then survives a failover
    to any of those replicas. WAIT does not make Redis strongly consistent: a replica that
    acknowledged may still lose the write if it restarts without persistence or is not the one
    promoted, and after a `NotReplicatedError` the jobs stay stored on the primary. Only enqueues
    wait; Runners' claims and acknowledgements do not. `wait_timeout_ms` must be positive and
    end at least 0.5 s before the connection's socket timeout (5 s with `from_url`).
    """

    def __init__(
        self,
        connection: redis.Redis,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        signing_keys: Sequence[str | bytes] | None = None,
        wait_replicas: int = 0,
        wait_timeout_ms: int = DEFAULT_WAIT_TIMEOUT_MS,
    ) -> None:
        _check_connection(connection)
        if not _valid_namespace(namespace):
            raise ConfigurationError(
                f"invalid namespace {namespace!r}: use a non-empty name without braces or "
                "whitespace"
            )
        if not isinstance(max_payload_bytes, int) or max_payload_bytes < 1:
            raise ConfigurationError(
                f"max_payload_bytes must be a positive integer, got {max_payload_bytes!r}"
            )
        _check_wait(connection, wait_replicas, wait_timeout_ms)

        self.redis = connection
        self.namespace = namespace
        self.max_payload_bytes = max_payload_bytes
        self.signer = Signer(signing_keys) if signing_keys is not None else None
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = wait_timeout_ms
        self.storage = Storage(connection, namespace)
        self._registered_queues: set[str] = set()
        self._static_queue_names: set[str] = set()
        # The Sentinel that from_url created; close() closes its connections too.
        self._own_sentinel: Sentinel | None = None

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        signing_keys: Sequence[str | bytes] | None = None,
        wait_replicas: int = 0,
        wait_timeout_ms: int = DEFAULT_WAIT_TIMEOUT_MS,
        **options: Any,
    ) -> Client:
        """Create a client for `url` (redis://, rediss://, unix:// or redis+sentinel://).

        No connection is made until the first command. `options` go to `redis.Redis`; unless
        they set them, connecting times out after 2 s, a command after 5 s, and a command
        that failed on a connection error is tried twice more.

        A `redis+sentinel://[user:password@]host:port[,host2:port2]/service_name[/db]` URL
        names Sentinels (port 26379 by default) and the service name of the primary; see
        `oxanus_sync.sentinel` for the full syntax. The client then connects to the primary
        that the Sentinels report, and follows a failover as `from_sentinel` does. The
        Sentinels are queried with the same connect and command timeouts, unless `options`
        has `sentinel_kwargs`, which go to `redis.sentinel.Sentinel` as they are.
        """
        client_options: dict[str, Any] = {
            "namespace": namespace,
            "max_payload_bytes": max_payload_bytes,
            "signing_keys": signing_keys,
            "wait_replicas": wait_replicas,
            "wait_timeout_ms": wait_timeout_ms,
        }
        _set_connection_defaults(options)
        if is_sentinel_url(url):
            return cls._from_sentinel_url(url, client_options, options)

        try:
            connection = redis.Redis.from_url(url, **options)
        except ValueError as error:
            raise ConfigurationError(
                f"invalid Redis URL {redact_url(url)!r}: {str(error).rstrip('.')}. Expected "
                "redis://host:port/db, rediss://host:port/db, unix:///path/to/redis.sock or "
                f"{SENTINEL_SYNTAX}"
            ) from error
        return cls(connection, **client_options)

    @classmethod
    def _from_sentinel_url(
        cls, url: str, client_options: dict[str, Any], options: dict[str, Any]
    ) -> Client:
        try:
            parsed = parse_sentinel_url(url)
        except ValueError as error:
            raise ConfigurationError(
                f"invalid Sentinel URL {redact_url(url)!r}: {str(error).rstrip('.')}. "
                f"Expected {SENTINEL_SYNTAX}"
            ) from error

        sentinel_options = options.pop("sentinel_kwargs", None)
        if sentinel_options is None:
            sentinel_options = {
                "socket_connect_timeout": options["socket_connect_timeout"],
                "socket_timeout": options["socket_timeout"],
            }
            if parsed.sentinel_username is not None:
                sentinel_options["username"] = parsed.sentinel_username
            if parsed.sentinel_password is not None:
                sentinel_options["password"] = parsed.sentinel_password
        if parsed.username is not None:
            options.setdefault("username", parsed.username)
        if parsed.password is not None:
            options.setdefault("password", parsed.password)

        sentinel = Sentinel(parsed.sentinels, sentinel_kwargs=sentinel_options)
        db = options.pop("db", parsed.db)
        client = cls.from_sentinel(
            sentinel, parsed.service_name, db=db, **client_options, **options
        )
        client._own_sentinel = sentinel
        return client

    @classmethod
    def from_sentinel(
        cls,
        sentinel: Sentinel,
        service_name: str,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        db: int = 0,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        signing_keys: Sequence[str | bytes] | None = None,
        wait_replicas: int = 0,
        wait_timeout_ms: int = DEFAULT_WAIT_TIMEOUT_MS,
        **options: Any,
    ) -> Client:
        """Create a client for the primary of `service_name`, found through `sentinel`.

        The connection is `sentinel.master_for(service_name, db=db, **options)`. Each new
        connection queries the Sentinels for the current primary, so after a failover the client
        and the Runners built on it reconnect to the promoted replica; calls made while no
        primary is known raise `RedisUnavailableError`. `options` get the same defaults as
        in `from_url`, unless they or the connection arguments of `sentinel` set them. The
        caller keeps ownership of `sentinel`: `close()` does not close it.
        """
        if not isinstance(sentinel, Sentinel):
            raise ConfigurationError(
                f"expected a redis.sentinel.Sentinel, got {type(sentinel).__name__}; "
                f"or use Client.from_url({SENTINEL_SYNTAX!r})"
            )
        if not isinstance(service_name, str) or not service_name:
            raise ConfigurationError(
                f"invalid Sentinel service name {service_name!r}: pass the name of the primary "
                "in the Sentinels' `sentinel monitor` line"
            )
        _set_connection_defaults(options, already_set=sentinel.connection_kwargs)
        connection = sentinel.master_for(service_name, db=db, **options)
        return cls(
            connection,
            namespace=namespace,
            max_payload_bytes=max_payload_bytes,
            signing_keys=signing_keys,
            wait_replicas=wait_replicas,
            wait_timeout_ms=wait_timeout_ms,
        )

    def close(self) -> None:
        """Close the connections of this client's pool; a later call opens new ones."""
        self.redis.close()
        if self._own_sentinel is not None:
            # redis-py 5.0 has no Sentinel.close(), so close its clients one by one.
            for sentinel_client in self._own_sentinel.sentinels:
                sentinel_client.close()

    # Enqueue

    def enqueue(self, queue: QueueRef, job: Worker) -> Enqueued:
        """Enqueue `job` to run as soon as a Runner takes it; return its id.

        The id is an `Enqueued` string whose `outcome` tells whether the job was created, or,
        for a job type with a `unique_key`, skipped or merged into the existing job (see
        `oxanus_sync.unique`).

        Raises `SerializationError` for arguments that cannot be stored, `EnqueueError` for
        an invalid job or a payload over `max_payload_bytes`, `ConfigurationError` for an
        invalid queue name, and `RedisUnavailableError` when Redis cannot be reached. The
        other enqueue methods raise the same errors.
        """
        return self._enqueue(queue, [job], ("now", 0))[0]

    def enqueue_in(self, queue: QueueRef, job: Worker, delay: Delay) -> Enqueued:
        """Enqueue `job` to run after `delay` (seconds or a timedelta); return its id."""
        return self._enqueue(queue, [job], ("in", _delay_ms(delay)))[0]

    def enqueue_at(self, queue: QueueRef, job: Worker, when: datetime) -> Enqueued:
        """Enqueue `job` to run at `when`, a timezone-aware datetime; return its id."""
        return self._enqueue(queue, [job], ("at", _timestamp_ms(when)))[0]

    def enqueue_many(
        self, queue: QueueRef, jobs: Iterable[Worker], *, delay: Delay | None = None
    ) -> list[Enqueued]:
        """Enqueue many jobs in one round trip per 1,000 jobs; return their ids in order."""
        when = ("now", 0) if delay is None else ("in", _delay_ms(delay))
        return self._enqueue(queue, list(jobs), when)

    def _enqueue(
        self, queue: QueueRef, jobs: Sequence[Worker], when: tuple[str, int]
    ) -> list[Enqueued]:
        name, member = self._enqueue_queue_name(queue)
        # A queue family keeps one unique hash, so a member's key is part of each unique field.
        scope = member[1] if member is not None else None
        entries = [self._entry(job, scope) for job in jobs]
        if not entries:
            return []

        with self._redis_errors(f"enqueue to queue {name!r}"):
            if name not in self._registered_queues:
                self._register(name)
            try:
                if self.wait_replicas:
                    outcomes = self._enqueue_and_wait(name, entries, when)
                else:
                    outcomes = self.storage.enqueue(name, entries, when)
            except PartialEnqueue as partial:
                raise _partial_enqueue_error(name, entries, partial) from partial.error
        return [Enqueued(job_id, _OUTCOMES[code]) for code, job_id in outcomes]

    def _enqueue_queue_name(self, queue: QueueRef) -> tuple[str, tuple[str, str] | None]:
        # The name, and the prefix and key when it names a member of a queue family. Names of
        # static queues are remembered, which spares each enqueue two regular expressions.
        known = queue.name if isinstance(queue, Queue) else queue
        if isinstance(known, str) and known in self._static_queue_names:
            return known, None

        name, member = _enqueue_queue_name(queue)
        if member is None and len(self._static_queue_names) < STATIC_NAMES_KEPT:
            self._static_queue_names.add(name)
        return name, member

    def _enqueue_and_wait(
        self,
        queue: str,
        entries: Sequence[NewJob],
        when: tuple[str, int],
    ) -> list[tuple[int, str]]:
        """Store jobs, then WAIT for `wait_replicas` replicas in the same pipeline."""
        ids = [entry.id for entry in entries]
        outcomes, acknowledged = self.storage.enqueue_and_wait(
            queue, entries, when, replicas=self.wait_replicas, timeout_ms=self.wait_timeout_ms
        )
        # Ids are new, so a job that already existed was stored by an earlier try of this
        # pipeline, on a connection that then dropped. WAIT did not cover that write.
        all_created = all(code != 0 for code, _ in outcomes)
        if isinstance(acknowledged, Exception):
            raise self._not_replicated(queue, ids, f"WAIT failed: {acknowledged}")
        if not all_created:
            raise self._not_replicated(
                queue, ids, "the connection dropped during the enqueue and was opened again"
            )
        if int(acknowledged) < self.wait_replicas:
            raise self._not_replicated(
                queue,
                ids,
                f"{acknowledged} of {self.wait_replicas} replicas acknowledged them within "
                f"{self.wait_timeout_ms} ms",
            )
        return outcomes

    def _not_replicated(self, queue: str, ids: list[str], reason: str) -> NotReplicatedError:
        quoted = ", ".join(ids[:QUOTED_IDS])
        if len(ids) > QUOTED_IDS:
            quoted += f" and {len(ids) - QUOTED_IDS} more"
        jobs = "1 job" if len(ids) == 1 else f"{len(ids)} jobs"
        replicas = "1 replica" if self.wait_replicas == 1 else f"{self.wait_replicas} replicas"
        error = NotReplicatedError(
            f"{jobs} of queue {queue!r} ({quoted}) stored on the primary, Redis at "
            f"{describe_server(self.redis)}, but not confirmed on {replicas}: {reason}. "
            "They run normally unless the primary fails before its replicas receive them, so "
            "do not enqueue them again; their ids are in this error's enqueued_ids. Check the "
            "replicas with INFO replication"
        )
        error.enqueued_ids = list(ids)
        return error

    def _entry(self, job: Worker, member: str | None) -> NewJob:
        if not isinstance(job, Worker):
            raise EnqueueError(f"cannot enqueue {job!r}: expected an instance of a Worker subclass")
        payload = encode_job(job)
        if len(payload) > self.max_payload_bytes:
            raise EnqueueError(
                f"the arguments of {job.job_name} encode to {len(payload)} bytes, over the "
                f"limit of {self.max_payload_bytes}: store large data elsewhere (a file, a "
                "database row, an object store) and pass its reference, or raise "
                "Client(max_payload_bytes=...)"
            )
        signature = self.signer.sign(payload) if self.signer else b""
        key = job.unique_key()
        if key is None:
            return NewJob(_new_id(), payload, signature)
        return NewJob(
            _new_id(),
            payload,
            signature,
            unique=unique_field(job.job_name, key, member),
            on_conflict=job.unique_conflict,
        )

    def _register(self, queue: str) -> None:
        # A family is registered once, as `prefix[*]`, whatever member is enqueued to.
        member = split_member_name(queue)
        registered = member_name(member[0], WHOLE_FAMILY) if member else queue
        if registered not in self._registered_queues:
            self.storage.register_queues([registered])
            self._registered_queues.add(registered)

    def _redis_errors(self, action: str) -> _RedisErrors:
        return _RedisErrors(self, action)

    def _translated(self, action: str, error: redis.RedisError) -> OxanusError | None:
        """Return the error to raise in place of a redis-py error, or None to raise it as is."""
        if isinstance(error, redis.AuthenticationError):
            return ConfigurationError(
                f"could not {action}: Redis at {describe_server(self.redis)} rejected the "
                f"credentials ({error}); check the user name and password of the URL"
            )
        if isinstance(error, redis.ConnectionError | redis.TimeoutError):
            return RedisUnavailableError(
                f"could not {action}: Redis at {describe_server(self.redis)} is unreachable "
                f"({error}). If the connection dropped during the call, the change may or may "
                "not have been applied"
            )
        if isinstance(error, redis.ResponseError) and "DB index is out of range" in str(error):
            database = self.redis.connection_pool.connection_kwargs.get("db", 0)
            return ConfigurationError(
                f"could not {action}: Redis at {describe_server(self.redis)} has no database "
                f"{database}; use a database number below the server's `databases` setting "
                "(16 by default), such as redis://host:6379/0"
            )
        return None

    # Inspection

    def server_time_ms(self) -> int:
        """Return the Redis server's clock in milliseconds, the clock of every stored time."""
        with self._redis_errors("read the server time"):
            return self.storage.server_time_ms()

    def queues(self) -> list[str]:
        """Return the names of every queue a Runner served or a Client enqueued to.

        A queue family is listed once, as `prefix[*]`.
        """
        with self._redis_errors("list queues"):
            return self.storage.known_queues()

    def stats(self, queues: Sequence[QueueRef] | None = None) -> list[QueueCounts]:
        """Return the counts of `queues` (every known queue by default), one round trip.

        A queue family's counts cover all its members and describe them in `family`; see
        `QueueCounts` for the counts of a single member.
        """
        names = [_queue_name(q) for q in queues] if queues is not None else self.queues()
        with self._redis_errors("read queue stats"):
            return self.storage.queue_counts(names)

    def cancel(self, queue: QueueRef, job_id: str) -> str:
        """Cancel a job and return what happened.

        "cancelled": it was waiting (ready, scheduled or retrying) and is deleted. "requested":
        it is running, and its Runner sets `ctx.cancelled` within about 0.5 s. "dead": it is in
        the dead set (see `delete_dead`). "not_found": no such job.
        """
        with self._redis_errors("cancel a job"):
            return self.storage.cancel(_queue_name(queue), job_id)

    def periodic_jobs(self) -> dict[str, dict[str, Any]]:
        """Return the periodic jobs that Runners registered, with their next run in ms."""
        with self._redis_errors("list periodic jobs"):
            return self.storage.periodic()

    def processes(self) -> list[ProcessRecord]:
        """Return the live Runner processes of this namespace."""
        with self._redis_errors("list Runner processes"):
            return self.storage.processes()

    def job(self, queue: QueueRef, job_id: str) -> dict[str, bytes]:
        """Return the raw fields of a job's hash, or {} when the job no longer exists."""
        with self._redis_errors("read a job"):
            return self.storage.job_fields(_queue_name(queue), job_id)

    # Dead set

    def dead_jobs(self, queue: QueueRef, *, offset: int = 0, limit: int = 100) -> list[DeadJob]:
        """Return dead jobs of `queue`, newest first, with the error that killed each.

        A queue family keeps one dead set for all its members, so a family or any of its
        members lists the dead jobs of every member. `DeadJob.queue` names each job's member.
        """
        check_integer("offset", offset, minimum=0)
        check_integer("limit", limit, minimum=0)
        with self._redis_errors("list dead jobs"):
            return self.storage.dead_jobs(_queue_name(queue), offset, limit)

    def retry_dead(self, queue: QueueRef, job_ids: Sequence[str]) -> int:
        """Move dead jobs back to the ready list with a fresh retry budget; return how many."""
        ids = _job_ids(job_ids)
        with self._redis_errors("retry dead jobs"):
            return self.storage.dead_retry(_queue_name(queue), ids)

    def delete_dead(self, queue: QueueRef, job_ids: Sequence[str]) -> int:
        """Delete dead jobs; return how many were deleted."""
        ids = _job_ids(job_ids)
        with self._redis_errors("delete dead jobs"):
            return self.storage.dead_delete(_queue_name(queue), ids)

    def purge_dead(self, queue: QueueRef) -> int:
        """Delete every dead job of `queue`; return how many were deleted."""
        with self._redis_errors("purge dead jobs"):
            return self.storage.dead_delete(_queue_name(queue), None)


_PASSWORD_OPTIONS = ("password", "sentinel_password")


def redact_url(url: str) -> str:
    """Return `url` with its password, in the user part or the query, replaced by "***".

    A URL that cannot be parsed is replaced whole, since its password cannot be located.
    """
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparsable URL>"
    if not password and "password=" not in parts.query:
        return url

    if password:
        credentials, _, address = parts.netloc.rpartition("@")
        username = credentials.partition(":")[0]
        parts = parts._replace(netloc=f"{username}:***@{address}")
    if "password=" in parts.query:
        query = [
            (name, "***" if name in _PASSWORD_OPTIONS else value)
            for name, value in parse_qsl(parts.query, keep_blank_values=True)
        ]
        parts = parts._replace(query=urlencode(query, safe="*/:"))
    return urlunsplit(parts)


def _partial_enqueue_error(
    queue: str, entries: Sequence[NewJob], partial: PartialEnqueue
) -> EnqueueError:
    ids = [entry.id for entry in entries]
    error = EnqueueError(
        f"Redis rejected the enqueue to queue {queue!r} after {partial.created} of {len(ids)} "
        f"jobs were stored: {type(partial.error).__name__}: {partial.error}. The stored jobs' "
        "ids are in this error's enqueued_ids; enqueue only the others again"
    )
    error.enqueued_ids = ids[: partial.created]
    return error


def describe_server(connection: redis.Redis) -> str:
    """Return where `connection` points, as host:port or a socket path, with no credentials.

    For a Sentinel-managed connection it names the service and the Sentinels.
    """
    pool = connection.connection_pool
    if isinstance(pool, SentinelConnectionPool):
        sentinels = ",".join(
            f"{options.get('host', 'localhost')}:{options.get('port', 26379)}"
            for options in (
                sentinel.connection_pool.connection_kwargs
                for sentinel in pool.sentinel_manager.sentinels
            )
        )
        return f"{pool.service_name!r} via Sentinel {sentinels}"
    options = pool.connection_kwargs
    if options.get("path"):
        return f"unix:{options['path']}"
    return f"{options.get('host', 'localhost')}:{options.get('port', 6379)}"


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


def _set_connection_defaults(
    options: dict[str, Any], already_set: dict[str, Any] | None = None
) -> None:
    defaults: dict[str, Any] = {
        "socket_connect_timeout": CONNECT_TIMEOUT_S,
        "socket_timeout": COMMAND_TIMEOUT_S,
        "retry": Retry(ExponentialWithJitterBackoff(cap=0.5, base=0.05), RETRIES),
    }
    for name, value in defaults.items():
        if name not in options and name not in (already_set or {}):
            options[name] = value


def _check_wait(connection: redis.Redis, wait_replicas: object, wait_timeout_ms: object) -> None:
    if isinstance(wait_replicas, bool) or not isinstance(wait_replicas, int) or wait_replicas < 0:
        raise ConfigurationError(
            f"wait_replicas must be an integer of 0 or more, got {wait_replicas!r}"
        )
    if (
        isinstance(wait_timeout_ms, bool)
        or not isinstance(wait_timeout_ms, int)
        or wait_timeout_ms < 1
    ):
        # WAIT with a timeout of 0 blocks forever.
        raise ConfigurationError(
            f"wait_timeout_ms must be a positive integer, got {wait_timeout_ms!r}"
        )
    socket_timeout = connection.connection_pool.connection_kwargs.get("socket_timeout")
    too_long = (
        socket_timeout is not None and wait_timeout_ms / 1000 + WAIT_REPLY_MARGIN_S > socket_timeout
    )
    if wait_replicas and too_long:
        raise ConfigurationError(
            f"wait_timeout_ms={wait_timeout_ms} does not end {WAIT_REPLY_MARGIN_S} s before "
            f"the connection's socket timeout of {socket_timeout} s, so the client would "
            "give up before WAIT replies; lower wait_timeout_ms or raise socket_timeout"
        )


# Storage's enqueue codes. Random ids make code 0 (the id already existed) impossible, except
# when a dropped connection made redis-py send the script again. The first send created the
# job then, so code 0 means created too.
_OUTCOMES = {
    0: EnqueueOutcome.CREATED,
    1: EnqueueOutcome.CREATED,
    2: EnqueueOutcome.SKIPPED,
    3: EnqueueOutcome.REPLACED,
}


def _job_ids(job_ids: object) -> list[str]:
    # A single id string would otherwise be read as a sequence of one-letter ids.
    if isinstance(job_ids, str | bytes) or not isinstance(job_ids, Iterable):
        raise ConfigurationError(
            f"job_ids must be a list of job ids, got {job_ids!r}; for one job pass [job_id]"
        )
    ids = list(job_ids)
    for job_id in ids:
        if not isinstance(job_id, str):
            raise ConfigurationError(f"invalid job id {job_id!r}: job ids are strings")
    return ids


def _valid_namespace(namespace: object) -> bool:
    # Braces would change the Redis Cluster hash tag of every key; whitespace breaks the CLI.
    return (
        isinstance(namespace, str)
        and bool(namespace)
        and not any(character in "{}" or character.isspace() for character in namespace)
    )


def _queue_name(queue: QueueRef) -> str:
    return resolve_queue_name(queue)


def _enqueue_queue_name(queue: QueueRef) -> tuple[str, tuple[str, str] | None]:
    # The name, and the prefix and key when it names a member of a queue family.
    if isinstance(queue, QueueFamily):
        raise ConfigurationError(
            f"cannot enqueue to queue family {queue.prefix!r} as a whole: enqueue to one of "
            f"its members, for example {queue.prefix}('some-key')"
        )
    name = resolve_queue_name(queue)
    member = split_member_name(name)
    if member is not None and member[1] == WHOLE_FAMILY:
        raise ConfigurationError(
            f"cannot enqueue to {name!r}, a whole queue family: enqueue to a member such as "
            f"{member_name(member[0], 'some-key')!r}"
        )
    return name, member


class _RedisErrors:
    """Context manager that raises a redis-py error of its block as the Client's error for it.

    A class rather than a `contextlib.contextmanager` generator, which costs a few microseconds
    more on every enqueue.
    """

    __slots__ = ("action", "client")

    def __init__(self, client: Client, action: str) -> None:
        self.client = client
        self.action = action

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if isinstance(error, redis.RedisError):
            translated = self.client._translated(self.action, error)
            if translated is not None:
                raise translated from error


def _new_id() -> str:
    """Return a random job id: a version 4 UUID in 32 hex digits, made without `uuid.UUID`."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40
    raw[8] = raw[8] & 0x3F | 0x80
    return raw.hex()


def _delay_ms(delay: Delay) -> int:
    seconds = delay.total_seconds() if isinstance(delay, timedelta) else delay
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise EnqueueError(f"invalid delay {delay!r}: pass seconds as a number or a timedelta")
    if not math.isfinite(seconds):
        raise EnqueueError(f"invalid delay {delay!r}: pass a finite number of seconds")
    if seconds < 0:
        raise EnqueueError(f"invalid delay {delay!r}: a delay cannot be negative")
    if seconds > MAX_DELAY_S:
        raise EnqueueError(
            f"invalid delay {delay!r}: over the maximum of {MAX_DELAY_S:.0f} seconds (100 years)"
        )
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
    due_ms = round(when.timestamp() * 1000)
    if due_ms > (time.time() + MAX_DELAY_S) * 1000:
        raise EnqueueError(
            f"invalid time {when.isoformat()}: more than 100 years ahead; pass a nearer time"
        )
    return due_ms
