"""`Job`: an RQ-layer job read back from Redis, with RQ's attributes and methods."""

from __future__ import annotations

import contextvars
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from oxanus_sync.client import Client
from oxanus_sync.context import CancelFlag
from oxanus_sync.envelope import decode_payload
from oxanus_sync.errors import SerializationError
from oxanus_sync.jsonvalues import from_json_object, to_json
from oxanus_sync.rq.connections import as_client, rq_storage
from oxanus_sync.rq.exceptions import DeserializationError, InvalidJobOperation, NoSuchJobError
from oxanus_sync.rq.options import Callback, Dependency, Retry
from oxanus_sync.rq.payload import RQCall
from oxanus_sync.rq.results import Result
from oxanus_sync.rq.serializers import Serializer, resolve_serializer, serializer_name
from oxanus_sync.storage.rq_store import RQStorage

__all__ = [
    "Callback",
    "Dependency",
    "Job",
    "JobStatus",
    "Retry",
    "cancel_job",
    "get_current_job",
    "requeue_job",
]

_current_job: contextvars.ContextVar[Job | None] = contextvars.ContextVar(
    "oxanus_rq_current_job", default=None
)
_json_decoder = json.JSONDecoder(object_hook=from_json_object)


class JobStatus(str, Enum):  # noqa: UP042 (str() must give "JobStatus.X", as in RQ)
    """A job's status. It compares equal to its value, such as "queued", but str() and
    f-strings give the member name, such as "JobStatus.QUEUED", as in RQ 3.0."""

    QUEUED = "queued"
    FINISHED = "finished"
    FAILED = "failed"
    STARTED = "started"
    DEFERRED = "deferred"
    SCHEDULED = "scheduled"
    STOPPED = "stopped"
    CANCELED = "canceled"
    # RQ 3.0 has these members too. Jobs of this layer never take these statuses, but code
    # that names them keeps importing.
    CREATED = "created"
    RATE_LIMITED = "rate_limited"
    READY_TO_ENQUEUE = "ready_to_enqueue"


def get_current_job() -> Job | None:
    """Return the job running in this thread, or None outside a job."""
    return _current_job.get()


def encode_meta(meta: dict[str, Any]) -> str:
    try:
        return json.dumps(to_json(meta), separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise SerializationError(
            f"job meta cannot be stored: {error}. Use the types that job arguments accept"
        ) from error


class Job:
    """A job of the RQ layer. Build it with `Job.fetch` or get it from `Queue.enqueue`."""

    def __init__(
        self,
        job_id: str,
        origin: str,
        call: RQCall,
        fields: dict[str, bytes],
        *,
        client: Client,
        serializer: object = None,
    ) -> None:
        self.id = job_id
        self.origin = origin
        self._call = call
        self._fields = fields
        self._client = client
        self.connection = client.redis
        self.serializer: Serializer = resolve_serializer(serializer)
        self.meta: dict[str, Any] = _decode_meta(fields.get("meta"))
        self._decoded: tuple[tuple[Any, ...], dict[str, Any]] | None = None
        # The latest successful return value, when this process already has it.
        self._return_value: Any = None
        # Set by the worker running this job when its timeout passes or it is canceled.
        self._stop_requested: CancelFlag | None = None

    # Loading

    @classmethod
    def fetch(cls, id: str, connection: Any, serializer: object = None) -> Job:
        """Return the job `id`; raise `NoSuchJobError` when it does not exist."""
        client = as_client(connection)
        store = rq_storage(client)
        queue = store.find_queue(id)
        if queue is None:
            raise NoSuchJobError(f"no job with id {id!r}")
        return cls.load(client, queue, id, serializer)

    @classmethod
    def load(cls, client: Client, queue: str, job_id: str, serializer: object = None) -> Job:
        fields = rq_storage(client).record(queue, job_id)
        if not fields.get("payload"):
            raise NoSuchJobError(f"no job with id {job_id!r} in queue {queue!r}")
        return cls(
            job_id,
            queue,
            _decode_call(fields["payload"]),
            fields,
            client=client,
            serializer=serializer,
        )

    @classmethod
    def fetch_many(
        cls, job_ids: Sequence[str], connection: Any, serializer: object = None
    ) -> list[Job | None]:
        """Return the jobs in order, None for each id that does not exist."""
        jobs: list[Job | None] = []
        for job_id in job_ids:
            try:
                jobs.append(cls.fetch(job_id, connection, serializer))
            except NoSuchJobError:
                jobs.append(None)
        return jobs

    @classmethod
    def exists(cls, job_id: str, connection: Any) -> bool:
        return rq_storage(as_client(connection)).find_queue(job_id) is not None

    def refresh(self) -> None:
        """Read the job's record again; raise `NoSuchJobError` when it is gone."""
        fields = self._store.record(self.origin, self.id)
        if not fields.get("payload"):
            raise NoSuchJobError(f"no job with id {self.id!r} in queue {self.origin!r}")
        self._fields = fields
        self.meta = _decode_meta(fields.get("meta"))

    @property
    def _store(self) -> RQStorage:
        return rq_storage(self._client)

    # Attributes fixed at enqueue

    @property
    def func_name(self) -> str:
        return self._call.func

    @property
    def description(self) -> str:
        return self._call.description

    @property
    def timeout(self) -> int | None:
        """The job timeout in seconds, -1 for no limit."""
        return self._call.timeout

    @property
    def result_ttl(self) -> int | None:
        return self._call.result_ttl

    @property
    def ttl(self) -> int | None:
        return self._call.ttl

    @property
    def failure_ttl(self) -> int | None:
        return self._call.failure_ttl

    @property
    def args(self) -> tuple[Any, ...]:
        return self._arguments()[0]

    @property
    def kwargs(self) -> dict[str, Any]:
        return self._arguments()[1]

    def _arguments(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        if self._decoded is None:
            self._decoded = decode_arguments(self._call, self.serializer)
        return self._decoded

    @property
    def retry_intervals(self) -> list[int]:
        return list(self._call.retry_intervals or [])

    @property
    def dependency_ids(self) -> list[str]:
        return [job_id for _, job_id in self._call.depends_on or []]

    @property
    def allow_dependency_failures(self) -> bool:
        return self._call.allow_dependency_failure

    @property
    def dependency(self) -> Job | None:
        """The first dependency, as RQ's attribute of that name."""
        refs = self._call.depends_on or []
        if not refs:
            return None
        queue, job_id = refs[0]
        try:
            return Job.load(self._client, queue, job_id, self.serializer)
        except NoSuchJobError:
            return None

    def fetch_dependencies(self) -> list[Job]:
        jobs = []
        for queue, job_id in self._call.depends_on or []:
            try:
                jobs.append(Job.load(self._client, queue, job_id, self.serializer))
            except NoSuchJobError:
                continue
        return jobs

    # State that changes

    @property
    def enqueued_at(self) -> datetime | None:
        return _time(self._fields.get("enqueued_at"))

    @property
    def started_at(self) -> datetime | None:
        return _time(self._fields.get("started_at"))

    @property
    def ended_at(self) -> datetime | None:
        return _time(self._fields.get("ended_at"))

    @property
    def worker_name(self) -> str | None:
        value = self._fields.get("worker_name")
        return value.decode() if value else None

    @property
    def retries_left(self) -> int | None:
        value = self._fields.get("retries_left")
        return int(value) if value and self._call.retry_max else None

    @property
    def exc_info(self) -> str | None:
        """The traceback of the latest result, read from Redis, or None.

        As in RQ, a job waiting for a retry, or one that succeeded after a failure, has none.
        """
        latest = self.latest_result()
        return latest.exc_string if latest is not None else None

    def get_status(self, refresh: bool = True) -> JobStatus:
        """Return the status; raise `InvalidJobOperation` when the job no longer exists."""
        if refresh:
            fields = self._store.record(self.origin, self.id)
            if not fields.get("status"):
                raise InvalidJobOperation(f"job {self.id!r} no longer exists")
            self._fields = fields
        return JobStatus(self._fields["status"].decode())

    @property
    def is_queued(self) -> bool:
        return self.get_status() == JobStatus.QUEUED

    @property
    def is_started(self) -> bool:
        return self.get_status() == JobStatus.STARTED

    @property
    def is_finished(self) -> bool:
        return self.get_status() == JobStatus.FINISHED

    @property
    def is_failed(self) -> bool:
        return self.get_status() == JobStatus.FAILED

    @property
    def is_deferred(self) -> bool:
        return self.get_status() == JobStatus.DEFERRED

    @property
    def is_scheduled(self) -> bool:
        return self.get_status() == JobStatus.SCHEDULED

    @property
    def is_canceled(self) -> bool:
        return self.get_status() == JobStatus.CANCELED

    @property
    def is_stopped(self) -> bool:
        return self.get_status() == JobStatus.STOPPED

    def is_stop_requested(self) -> bool:
        """Return whether the running job passed its timeout or was canceled.

        Only the job returned by `get_current_job()` inside a worker can be stopped this way.
        A long job should check it and return, since a thread blocked in C code cannot be
        interrupted.
        """
        return self._stop_requested is not None and self._stop_requested.is_set()

    # Results

    def results(self) -> list[Result]:
        """Return the stored results, newest first (at most 10)."""
        return [self._result(stored) for stored in self._store.results(self.origin, self.id, 10)]

    def latest_result(self, timeout: float = 0) -> Result | None:
        """Return the newest result; with `timeout` > 0 wait that many seconds for one."""
        stored = self._store.results(self.origin, self.id, 1)
        if stored:
            return self._result(stored[0])
        if timeout <= 0:
            return None
        waited = self._store.wait_result(self.origin, self.id, "0-0", timeout)
        return None if waited is None else self._result(waited)

    def return_value(self, refresh: bool = False) -> Any:
        """Return the value of the latest successful run, or None."""
        if self._return_value is not None and not refresh:
            return self._return_value
        for stored in self._store.results(self.origin, self.id, 10):
            if stored.type == Result.Type.SUCCESSFUL.value:
                self._return_value = self._result(stored).return_value
                return self._return_value
        return None

    @property
    def result(self) -> Any:
        """The return value of the latest successful run; RQ's older name for `return_value()`."""
        return self.return_value()

    def _result(self, stored: Any) -> Result:
        value = None
        if stored.return_value is not None:
            value = self._load_value(stored.return_value)
        return Result(self.id, stored, value)

    def _load_value(self, data: bytes) -> Any:
        try:
            return self.serializer.loads(data)
        except Exception as error:
            raise DeserializationError(
                f"the return value of job {self.id!r} could not be read with the "
                f"{serializer_name(self.serializer)} serializer: {error}; pass the serializer "
                "the worker used"
            ) from error

    # Meta

    def save_meta(self) -> None:
        """Store `self.meta` in Redis, where other processes read it with `get_meta()`."""
        if not self._store.save_meta(self.origin, self.id, encode_meta(self.meta)):
            raise NoSuchJobError(f"no job with id {self.id!r}: its meta cannot be saved")

    def get_meta(self, refresh: bool = True) -> dict[str, Any]:
        if refresh:
            self.refresh()
        return self.meta

    # Control

    def cancel(
        self, enqueue_dependents: bool = False, remove_from_dependencies: bool = False
    ) -> None:
        """Take the job out of its queue and mark it canceled; a worker never starts it."""
        outcome = self._store.cancel(self.origin, self.id)
        if outcome == "already_canceled":
            raise InvalidJobOperation(f"job {self.id!r} is already canceled")
        if outcome == "not_found":
            raise NoSuchJobError(f"no job with id {self.id!r}")
        if enqueue_dependents:
            from oxanus_sync.rq.dependencies import release_dependents

            release_dependents(self._client, self.origin, self.id)

    def requeue(self, at_front: bool = False) -> Job:
        """Put a failed job back on its queue; raise `InvalidJobOperation` for any other job."""
        if not self._store.requeue(self.origin, self.id, at_front=at_front):
            raise InvalidJobOperation(
                f"job {self.id!r} is not in the failed job registry, so it cannot be requeued"
            )
        self.refresh()
        return self

    def delete(self, remove_from_queue: bool = True, delete_dependents: bool = False) -> None:
        """Delete the job, its result and its registry entries."""
        if delete_dependents:
            for queue, job_id in self._store.dependents(self.origin, self.id):
                self._store.delete(queue, job_id)
        self._store.delete(self.origin, self.id)

    def get_position(self) -> int | None:
        try:
            return self._store.ready_ids(self.origin).index(self.id)
        except ValueError:
            return None

    def __repr__(self) -> str:
        return f"Job({self.id!r}, func={self.func_name!r}, origin={self.origin!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Job) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)


def cancel_job(job_id: str, connection: Any) -> None:
    Job.fetch(job_id, connection).cancel()


def requeue_job(job_id: str, connection: Any) -> Job:
    return Job.fetch(job_id, connection).requeue()


def _decode_call(payload: bytes) -> RQCall:
    envelope = decode_payload(payload)
    return RQCall.from_args(envelope.args)


def decode_arguments(
    call: RQCall, serializer: Serializer
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Return the job's positional and keyword arguments, read with `serializer`."""
    if call.serializer != serializer_name(serializer):
        raise DeserializationError(
            f"the arguments of this job were stored with the {call.serializer} serializer, "
            f"but it is being read with {serializer_name(serializer)}; pass "
            f"serializer={call.serializer!r}"
        )
    try:
        data = serializer.loads(call.call)
        args, kwargs = data[0], data[1]
    except Exception as error:
        raise DeserializationError(
            f"the arguments of this job could not be read: {error}"
        ) from error
    return tuple(args), dict(kwargs)


def _decode_meta(raw: bytes | None) -> dict[str, Any]:
    if not raw:
        return {}
    value = _json_decoder.decode(raw.decode("utf-8"))
    return value if isinstance(value, dict) else {}


def _time(raw: bytes | None) -> datetime | None:
    return datetime.fromtimestamp(int(raw) / 1000, UTC) if raw else None
