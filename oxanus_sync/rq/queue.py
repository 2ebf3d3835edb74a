"""`Queue`: RQ's enqueueing API over the queues of this library."""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from oxanus_sync.envelope import encode_job
from oxanus_sync.errors import EnqueueError, SerializationError
from oxanus_sync.queue import validate_queue_name
from oxanus_sync.rq.connections import as_client, rq_storage
from oxanus_sync.rq.dependencies import dependencies_met, release_if_ready
from oxanus_sync.rq.exceptions import DuplicateJobError, NoSuchJobError
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
from oxanus_sync.rq.registry import (
    CanceledJobRegistry,
    DeferredJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from oxanus_sync.rq.serializers import JSONSerializer, resolve_serializer, serializer_name

logger = logging.getLogger(__name__)

# Keyword arguments that enqueue() takes for itself instead of passing them to the function.
RESERVED = (
    "job_timeout",
    "description",
    "result_ttl",
    "ttl",
    "failure_ttl",
    "depends_on",
    "job_id",
    "at_front",
    "meta",
    "retry",
    "on_success",
    "on_failure",
    "on_stopped",
    "pipeline",
    "unique",
)


class Queue:
    """A named queue with RQ's API. `connection` is a `redis.Redis` or an oxanus_sync `Client`.

    Jobs run in `oxanus_sync.rq.Worker` (or `oxanus-sync rq worker`). With `is_async=False`
    each job runs at once inside `enqueue`, in the calling thread, as RQ does.
    """

    DEFAULT_TIMEOUT = 180

    def __init__(
        self,
        name: str = "default",
        connection: Any = None,
        default_timeout: int | str | None = None,
        is_async: bool = True,
        job_class: Any = None,
        serializer: object = None,
        **kwargs: Any,
    ) -> None:
        if connection is None:
            raise TypeError("Queue() needs connection=, a redis.Redis or an oxanus_sync.Client")
        self.name = validate_queue_name(name)
        self._client = as_client(connection)
        self.connection = self._client.redis
        timeout = parse_timeout(default_timeout)
        self._default_timeout = timeout if timeout is not None else self.DEFAULT_TIMEOUT
        self._is_async = is_async
        self.serializer = resolve_serializer(serializer)

    @classmethod
    def all(cls, connection: Any, serializer: object = None) -> list[Queue]:
        client = as_client(connection)
        return [cls(name, client, serializer=serializer) for name in client.queues()]

    @property
    def key(self) -> str:
        return self._client.storage.keys(self.name).ready

    @property
    def is_async(self) -> bool:
        return self._is_async

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return f"Queue({self.name!r})"

    # Contents

    @property
    def count(self) -> int:
        """The number of jobs waiting in the queue (not deferred, scheduled or running)."""
        return rq_storage(self._client).ready_count(self.name)

    def is_empty(self) -> bool:
        return self.count == 0

    @property
    def job_ids(self) -> list[str]:
        return self.get_job_ids()

    def get_job_ids(self, offset: int = 0, length: int = -1) -> list[str]:
        """Return the ids of waiting jobs, the next to run first."""
        return rq_storage(self._client).ready_ids(self.name, offset, length)

    @property
    def jobs(self) -> list[Job]:
        return [job for job in (self.fetch_job(i) for i in self.job_ids) if job is not None]

    def fetch_job(self, job_id: str) -> Job | None:
        try:
            return Job.load(self._client, self.name, job_id, self.serializer)
        except NoSuchJobError:
            return None

    def get_job_position(self, job_or_id: Job | str) -> int | None:
        job_id = job_or_id.id if isinstance(job_or_id, Job) else job_or_id
        try:
            return self.job_ids.index(job_id)
        except ValueError:
            return None

    def empty(self) -> int:
        """Delete every waiting job of the queue; return how many were deleted."""
        return rq_storage(self._client).empty(self.name)

    def delete(self, delete_jobs: bool = True) -> None:
        """Delete the waiting jobs (the queue's other jobs stay until they end)."""
        self.empty()

    # Registries

    @property
    def started_job_registry(self) -> StartedJobRegistry:
        return StartedJobRegistry(queue=self)

    @property
    def finished_job_registry(self) -> FinishedJobRegistry:
        return FinishedJobRegistry(queue=self)

    @property
    def failed_job_registry(self) -> FailedJobRegistry:
        return FailedJobRegistry(queue=self)

    @property
    def deferred_job_registry(self) -> DeferredJobRegistry:
        return DeferredJobRegistry(queue=self)

    @property
    def scheduled_job_registry(self) -> ScheduledJobRegistry:
        return ScheduledJobRegistry(queue=self)

    @property
    def canceled_job_registry(self) -> CanceledJobRegistry:
        return CanceledJobRegistry(queue=self)

    # Enqueue

    def enqueue(self, f: Callable[..., Any] | str, *args: Any, **kwargs: Any) -> Job:
        """Enqueue `f(*args, **kwargs)`; RQ's reserved keyword arguments are options."""
        call_args, call_kwargs, options = _split_arguments(args, kwargs)
        options["timeout"] = options.pop("job_timeout", None)
        return self.enqueue_call(f, args=call_args, kwargs=call_kwargs, **options)

    def enqueue_in(
        self,
        time_delta: timedelta | int | float,
        func: Callable[..., Any] | str,
        *args: Any,
        **kwargs: Any,
    ) -> Job:
        """Enqueue `func` to run after `time_delta` (a timedelta or seconds)."""
        seconds = time_delta.total_seconds() if isinstance(time_delta, timedelta) else time_delta
        when = datetime.now(UTC) + timedelta(seconds=seconds)
        return self.enqueue_at(when, func, *args, **kwargs)

    def enqueue_at(
        self,
        datetime: datetime,
        f: Callable[..., Any] | str,
        *args: Any,
        **kwargs: Any,
    ) -> Job:
        """Enqueue `f` to run at `datetime`; a naive datetime is read as local time."""
        call_args, call_kwargs, options = _split_arguments(args, kwargs)
        options["timeout"] = options.pop("job_timeout", None)
        due_ms = round(datetime.astimezone(UTC).timestamp() * 1000)
        return self._enqueue(f, call_args, call_kwargs, due_ms=due_ms, **options)

    def enqueue_call(
        self,
        func: Callable[..., Any] | str,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        timeout: int | str | None = None,
        result_ttl: int | str | None = None,
        ttl: int | str | None = None,
        failure_ttl: int | str | None = None,
        description: str | None = None,
        depends_on: Any = None,
        job_id: str | None = None,
        at_front: bool = False,
        meta: dict[str, Any] | None = None,
        retry: Retry | None = None,
        on_success: Callback | Callable[..., Any] | None = None,
        on_failure: Callback | Callable[..., Any] | None = None,
        on_stopped: Callback | Callable[..., Any] | None = None,
        pipeline: Any = None,
        unique: bool = False,
    ) -> Job:
        """Enqueue `func(*args, **kwargs)` with explicit options; `timeout` is the job timeout."""
        return self._enqueue(
            func,
            tuple(args or ()),
            dict(kwargs or {}),
            timeout=timeout,
            result_ttl=result_ttl,
            ttl=ttl,
            failure_ttl=failure_ttl,
            description=description,
            depends_on=depends_on,
            job_id=job_id,
            at_front=at_front,
            meta=meta,
            retry=retry,
            on_success=on_success,
            on_failure=on_failure,
            on_stopped=on_stopped,
            unique=unique,
        )

    @staticmethod
    def prepare_data(
        func: Callable[..., Any] | str,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Return one job's enqueue arguments for `enqueue_many`."""
        return {"func": func, "args": args, "kwargs": kwargs, **options}

    def enqueue_many(self, job_datas: Iterable[dict[str, Any]], pipeline: Any = None) -> list[Job]:
        """Enqueue jobs prepared with `prepare_data`, one round trip each.

        NOTE: unlike RQ, this makes one round trip per job and ignores `pipeline`.
        """
        return [self.enqueue_call(**data) for data in job_datas]

    def _enqueue(
        self,
        func: Callable[..., Any] | str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        due_ms: int | None = None,
        timeout: int | str | None = None,
        result_ttl: int | str | None = None,
        ttl: int | str | None = None,
        failure_ttl: int | str | None = None,
        description: str | None = None,
        depends_on: Any = None,
        job_id: str | None = None,
        at_front: bool = False,
        meta: dict[str, Any] | None = None,
        retry: Retry | None = None,
        on_success: Any = None,
        on_failure: Any = None,
        on_stopped: Any = None,
        unique: bool = False,
    ) -> Job:
        func_name = callable_name(func)
        job_id = validate_job_id(job_id) if job_id is not None else uuid.uuid4().hex
        if unique and depends_on is not None:
            raise ValueError("unique=True cannot be combined with depends_on")
        dependency = _dependency(depends_on)
        store = rq_storage(self._client)
        refs = (
            [self._dependency_ref(parent) for parent in dependency.dependencies]
            if dependency
            else []
        )

        job_timeout = parse_timeout(timeout)
        call = RQCall(
            func=func_name,
            call=self._serialize_call(func_name, args, kwargs),
            serializer=serializer_name(self.serializer),
            description=description or _describe(func_name, args, kwargs),
            timeout=job_timeout if job_timeout is not None else self._default_timeout,
            result_ttl=parse_ttl("result_ttl", result_ttl, allow_zero=True),
            ttl=parse_ttl("ttl", ttl, allow_zero=False),
            failure_ttl=parse_ttl("failure_ttl", failure_ttl, allow_zero=False),
            retry_max=retry.max if retry else 0,
            retry_intervals=retry.intervals if retry else None,
            retry_at_front=retry.enqueue_at_front if retry else False,
            callbacks=_callbacks(on_success, on_failure, on_stopped),
            depends_on=[[queue, parent_id] for queue, parent_id in refs] or None,
            allow_dependency_failure=bool(dependency and dependency.allow_failure),
            dependents_at_front=bool(dependency and dependency.enqueue_at_front),
        )
        payload = encode_job(call)
        if len(payload) > self._client.max_payload_bytes:
            raise EnqueueError(
                f"the job {func_name} encodes to {len(payload)} bytes, over the limit of "
                f"{self._client.max_payload_bytes}: store large data elsewhere and pass its "
                "reference, or raise Client(max_payload_bytes=...)"
            )
        signature = self._client.signer.sign(payload) if self._client.signer else b""

        for parent in refs:
            store.add_dependent(parent, (self.name, job_id))
        if not self._is_async:
            mode = "inline"
        elif refs and not dependencies_met(store, call):
            mode = "deferred"
        else:
            mode = "now" if due_ms is None else "at"

        # NOTE: an inline job sits in a processing list that no lease covers while it runs, so
        # if this process dies then, no worker takes it back.
        inline_process_id = f"inline-{secrets.token_hex(8)}" if mode == "inline" else ""
        created = store.enqueue(
            self.name,
            job_id,
            payload,
            signature,
            mode=mode,
            due_ms=due_ms or 0,
            at_front=at_front,
            meta_json=encode_meta(meta or {}),
            retries_left=call.retry_max,
            ttl_ms=(call.ttl or 0) * 1000 if call.ttl and call.ttl > 0 else 0,
            inline_process_id=inline_process_id,
        )
        if not created:
            if unique:
                raise DuplicateJobError(f"a job with id {job_id!r} is already waiting or running")
            logger.warning(
                "job not enqueued again: a job with this id is still waiting or running "
                "job_id=%s queue=%s type=%s",
                job_id,
                self.name,
                func_name,
            )
            return Job.load(self._client, self.name, job_id, self.serializer)

        logger.debug("job enqueued job_id=%s queue=%s type=%s", job_id, self.name, func_name)
        if mode == "deferred":
            # A dependency may have ended between the check above and the creation.
            release_if_ready(store, self.name, job_id)
        if mode == "inline":
            from oxanus_sync.rq.execution import run_inline

            run_inline(self._client, self.name, job_id, inline_process_id, self.serializer)
        return Job.load(self._client, self.name, job_id, self.serializer)

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
            return rq_storage(self._client).find_queue(parent) or self.name, parent
        raise ValueError(f"invalid dependency {parent!r}: pass a Job, a job id or a Dependency")


def _split_arguments(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any], dict[str, Any]]:
    options = {name: kwargs.pop(name) for name in RESERVED if name in kwargs}
    if "args" in kwargs or "kwargs" in kwargs:
        if args:
            raise ValueError(
                "pass the function's arguments either positionally or as args= and kwargs=, "
                "not both"
            )
        args = tuple(kwargs.pop("args", None) or ())
        kwargs = dict(kwargs.pop("kwargs", None) or {})
    options.pop("pipeline", None)
    return args, kwargs, options


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
