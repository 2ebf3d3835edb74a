"""`Queue`: RQ's enqueueing API over the queues of this library."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from oxanus_sync.queue import validate_queue_name
from oxanus_sync.rq.connections import as_client, rq_storage
from oxanus_sync.rq.enqueueing import EnqueueOptions, Enqueuer
from oxanus_sync.rq.exceptions import NoSuchJobError
from oxanus_sync.rq.job import Job
from oxanus_sync.rq.options import (
    Callback,
    Retry,
    parse_timeout,
)
from oxanus_sync.rq.registry import (
    CanceledJobRegistry,
    DeferredJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from oxanus_sync.rq.serializers import resolve_serializer

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
        """Enqueue jobs prepared with `prepare_data`, in one round trip for those without
        dependencies; `pipeline` is ignored, so the jobs are stored when this returns."""
        if not self._is_async:
            return [self.enqueue_call(**data) for data in job_datas]
        enqueuer = self._enqueuer()
        prepared = []
        for data in job_datas:
            options = dict(data)
            func = options.pop("func")
            args = tuple(options.pop("args", None) or ())
            kwargs = dict(options.pop("kwargs", None) or {})
            prepared.append(enqueuer.prepare(func, args, kwargs, EnqueueOptions(**options)))
        return enqueuer.enqueue_many(prepared)

    def _enqueue(
        self,
        func: Callable[..., Any] | str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        **options: Any,
    ) -> Job:
        return self._enqueuer().enqueue(
            func, args, kwargs, EnqueueOptions(**options), inline=not self._is_async
        )

    def _enqueuer(self) -> Enqueuer:
        return Enqueuer(self._client, self.name, self.serializer, self._default_timeout)


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
