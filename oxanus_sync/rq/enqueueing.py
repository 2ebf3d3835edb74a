"""Turning an RQ-style enqueue call into a stored job: payload, mode, then one script call."""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from oxanus_sync.client import Client
from oxanus_sync.envelope import encode_job
from oxanus_sync.errors import EnqueueError, SerializationError
from oxanus_sync.rq.connections import rq_storage
from oxanus_sync.rq.dependencies import dependencies_met, release_if_ready
from oxanus_sync.rq.exceptions import DuplicateJobError
from oxanus_sync.rq.functions import callable_name
from oxanus_sync.rq.job import Job, encode_meta
from oxanus_sync.rq.options import (
    Callback,
    Dependency,
    Retry,
    parse_timeout,
    parse_ttl,
    validate_job_id,
)
from oxanus_sync.rq.payload import RQCall
from oxanus_sync.rq.serializers import JSONSerializer, Serializer, serializer_name
from oxanus_sync.storage.rq_store import RQEnqueue

logger = logging.getLogger(__name__)

_STATUS_OF_MODE = {"now": "queued", "at": "scheduled", "deferred": "deferred", "inline": "queued"}


@dataclass(frozen=True)
class EnqueueOptions:
    """RQ's enqueue options, with RQ's names; `timeout` is the job timeout."""

    due_ms: int | None = None
    timeout: int | str | None = None
    result_ttl: int | str | None = None
    ttl: int | str | None = None
    failure_ttl: int | str | None = None
    description: str | None = None
    depends_on: Any = None
    job_id: str | None = None
    at_front: bool = False
    meta: dict[str, Any] | None = None
    retry: Retry | None = None
    on_success: Any = None
    on_failure: Any = None
    on_stopped: Any = None
    unique: bool = False


@dataclass(frozen=True)
class PreparedJob:
    """A job ready to store: its payload and how it enters its queue."""

    call: RQCall
    entry: RQEnqueue
    refs: list[tuple[str, str]]
    meta: dict[str, Any]
    unique: bool


class Enqueuer:
    """The builder of the jobs of one queue, for `oxanus_sync.rq.Queue`: payloads, then storage."""

    def __init__(
        self, client: Client, queue: str, serializer: Serializer, default_timeout: int
    ) -> None:
        self.client = client
        self.queue = queue
        self.serializer = serializer
        self.default_timeout = default_timeout
        self.store = rq_storage(client)

    def enqueue(
        self,
        func: Callable[..., Any] | str,
        args: Sequence[Any],
        kwargs: dict[str, Any],
        options: EnqueueOptions,
        *,
        inline: bool = False,
    ) -> Job:
        """Store one job; with `inline`, run it at once in this thread."""
        job = self.prepare(func, tuple(args), dict(kwargs), options)
        return self._store_one(job, inline=inline)

    def enqueue_many(self, jobs: Sequence[PreparedJob]) -> list[Job]:
        """Store jobs without dependencies in one round trip, the others one by one."""
        simple = [job for job in jobs if not job.refs]
        stored = dict(zip([id(job) for job in simple], self._store(simple), strict=True))
        results = []
        for job in jobs:
            results.append(stored[id(job)] if id(job) in stored else self._store_one(job))
        return results

    def prepare(
        self,
        func: Callable[..., Any] | str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: EnqueueOptions,
    ) -> PreparedJob:
        """Validate an enqueue call and build its payload, or raise naming what is invalid."""
        func_name = callable_name(func)
        job_id = validate_job_id(options.job_id) if options.job_id is not None else None
        if options.unique and options.depends_on is not None:
            raise ValueError("unique=True cannot be combined with depends_on")
        dependency = _dependency(options.depends_on)
        refs = (
            [self._dependency_ref(parent) for parent in dependency.dependencies]
            if dependency
            else []
        )

        timeout = parse_timeout(options.timeout)
        retry = options.retry
        call = RQCall(
            func=func_name,
            call=self._serialize_call(func_name, args, kwargs),
            serializer=serializer_name(self.serializer),
            description=options.description or _describe(func_name, args, kwargs),
            timeout=timeout if timeout is not None else self.default_timeout,
            result_ttl=parse_ttl("result_ttl", options.result_ttl, allow_zero=True),
            ttl=parse_ttl("ttl", options.ttl, allow_zero=False),
            failure_ttl=parse_ttl("failure_ttl", options.failure_ttl, allow_zero=False),
            retry_max=retry.max if retry else 0,
            retry_intervals=retry.intervals if retry else None,
            retry_at_front=retry.enqueue_at_front if retry else False,
            callbacks=_callbacks(options.on_success, options.on_failure, options.on_stopped),
            depends_on=[[queue, parent_id] for queue, parent_id in refs] or None,
            allow_dependency_failure=bool(dependency and dependency.allow_failure),
            dependents_at_front=bool(dependency and dependency.enqueue_at_front),
        )
        payload = encode_job(call)
        if len(payload) > self.client.max_payload_bytes:
            raise EnqueueError(
                f"the job {func_name} encodes to {len(payload)} bytes, over the limit of "
                f"{self.client.max_payload_bytes}: store large data elsewhere and pass its "
                "reference, or raise Client(max_payload_bytes=...)"
            )

        meta = dict(options.meta or {})
        entry = RQEnqueue(
            job_id=job_id or str(uuid.uuid4()),
            payload=payload,
            signature=self.client.signer.sign(payload) if self.client.signer else b"",
            mode="now" if options.due_ms is None else "at",
            due_ms=options.due_ms or 0,
            at_front=options.at_front,
            meta_json=encode_meta(meta),
            retries_left=call.retry_max,
            ttl_ms=call.ttl * 1000 if call.ttl and call.ttl > 0 else 0,
        )
        return PreparedJob(call, entry, refs, meta, options.unique)

    def _store_one(self, job: PreparedJob, *, inline: bool = False) -> Job:
        entry = job.entry
        for parent in job.refs:
            self.store.add_dependent(parent, (self.queue, entry.job_id))
        # As in RQ, a queue with is_async=False runs a job at once only when it would be
        # queued: a scheduled job waits for its time, and a deferred one is queued for a
        # worker when its dependencies finish.
        if job.refs and not dependencies_met(self.store, job.call):
            entry = replace(entry, mode="deferred")
        elif inline and entry.mode == "now":
            # NOTE: an inline job sits in a processing list that no lease covers while it
            # runs, so if this process dies then, no worker takes it back.
            entry = replace(
                entry, mode="inline", inline_process_id=f"inline-{secrets.token_hex(8)}"
            )
        job = replace(job, entry=entry)

        (stored,) = self._store([job])
        if entry.mode == "deferred":
            # A dependency may have ended between the check above and the creation.
            release_if_ready(self.store, self.queue, entry.job_id)
        if entry.mode == "inline":
            from oxanus_sync.rq.execution import run_inline

            run_inline(
                self.client, self.queue, entry.job_id, entry.inline_process_id, self.serializer
            )
            return Job.load(self.client, self.queue, entry.job_id, self.serializer)
        return stored

    def _store(self, jobs: Sequence[PreparedJob]) -> list[Job]:
        if not jobs:
            return []
        enqueued = self.store.enqueue(self.queue, [job.entry for job in jobs])
        results = []
        for job, enqueued_at in zip(jobs, enqueued, strict=True):
            entry = job.entry
            if not enqueued_at:
                results.append(self._existing(job))
                continue
            logger.debug(
                "job enqueued job_id=%s queue=%s type=%s", entry.job_id, self.queue, job.call.func
            )
            fields = {
                "payload": entry.payload,
                "status": _STATUS_OF_MODE[entry.mode].encode(),
                "meta": entry.meta_json.encode(),
                "retries_left": str(entry.retries_left).encode(),
            }
            # As in RQ, a scheduled or deferred job has no enqueue time until it is queued.
            if entry.mode in ("now", "inline"):
                fields["enqueued_at"] = str(enqueued_at).encode()
            results.append(
                Job(
                    entry.job_id,
                    self.queue,
                    job.call,
                    fields,
                    client=self.client,
                    serializer=self.serializer,
                )
            )
        return results

    def _existing(self, job: PreparedJob) -> Job:
        job_id = job.entry.job_id
        if job.unique:
            raise DuplicateJobError(f"a job with id {job_id!r} is already waiting or running")
        logger.warning(
            "job not enqueued again: a job with this id is still waiting or running "
            "job_id=%s queue=%s type=%s",
            job_id,
            self.queue,
            job.call.func,
        )
        return Job.load(self.client, self.queue, job_id, self.serializer)

    def _serialize_call(
        self, func_name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> bytes:
        try:
            return self.serializer.dumps([list(args), kwargs])
        except (TypeError, ValueError) as error:
            raise SerializationError(
                _describe_bad_argument(func_name, args, kwargs, self.serializer, error)
            ) from error

    def _dependency_ref(self, parent: Any) -> tuple[str, str]:
        if isinstance(parent, Job):
            return parent.origin, parent.id
        if isinstance(parent, str):
            return self.store.find_queue(parent) or self.queue, parent
        raise ValueError(f"invalid dependency {parent!r}: pass a Job, a job id or a Dependency")


def _dependency(depends_on: Any) -> Dependency | None:
    if depends_on is None:
        return None
    if isinstance(depends_on, Dependency):
        return depends_on
    return Dependency(depends_on)


def _callbacks(on_success: Any, on_failure: Any, on_stopped: Any) -> dict[str, Any] | None:
    callbacks = {}
    for kind, callback in (
        ("success", on_success),
        ("failure", on_failure),
        ("stopped", on_stopped),
    ):
        if callback is None:
            continue
        if not isinstance(callback, Callback):
            callback = Callback(callback)
        callbacks[kind] = [callback.name, callback.timeout]
    return callbacks or None


def _describe(func_name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    parts = [repr(arg) for arg in args] + [f"{name}={value!r}" for name, value in kwargs.items()]
    return f"{func_name}({', '.join(parts)})"


def _describe_bad_argument(
    func_name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    serializer: Any,
    error: Exception,
) -> str:
    named = [(f"argument {i + 1}", value) for i, value in enumerate(args)]
    named += [(f"keyword argument {name!r}", value) for name, value in kwargs.items()]
    for label, value in named:
        try:
            serializer.dumps(value)
        except (TypeError, ValueError) as failure:
            hint = (
                "Pass JSON types, or bytes, tuples, sets, datetimes, dates, times, Decimals or "
                "UUIDs, or opt in to pickle with Queue(..., serializer='pickle') if every "
                "writer to Redis is trusted"
                if isinstance(serializer, JSONSerializer)
                else "Pass values that this serializer can store"
            )
            return (
                f"{label} of {func_name} cannot be stored: {type(value).__name__} value "
                f"({failure}). {hint}"
            )
    return f"the arguments of {func_name} cannot be stored: {error}"
