"""Enqueueing through `oxanus_sync.rq.Queue`, checked against RQ's documented behaviour."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis

from oxanus_sync import Client, SerializationError
from oxanus_sync.rq import Queue, Retry
from oxanus_sync.rq.exceptions import DuplicateJobError, NoSuchJobError
from oxanus_sync.rq.job import Job, JobStatus
from oxanus_sync.rq.options import parse_timeout
from tests import rq_jobs
from tests.rq_helpers import burst


@pytest.fixture
def client(redis_url: str, namespace: str) -> Iterator[Client]:
    client = Client(redis.Redis.from_url(redis_url), namespace=namespace)
    yield client
    client.close()


def test_queue_needs_connection() -> None:
    with pytest.raises(TypeError):
        Queue("default")


def test_enqueue_returns_queued_job(client: Client) -> None:
    queue = Queue("default", connection=client)
    job = queue.enqueue(rq_jobs.add, 1, y=2)

    assert job.get_status() == JobStatus.QUEUED
    assert job.get_status() == "queued"
    assert job.func_name == "tests.rq_jobs.add"
    assert job.args == (1,)
    assert job.kwargs == {"y": 2}
    assert job.description == "tests.rq_jobs.add(1, y=2)"
    assert job.timeout == 180
    assert job.result_ttl is None
    assert job.ttl is None
    assert job.origin == "default"
    assert job.enqueued_at is not None
    assert job.enqueued_at.tzinfo is not None
    assert len(queue) == 1
    assert queue.count == 1
    assert queue.job_ids == [job.id]


def test_generated_job_id_is_uuid_string(client: Client) -> None:
    job = Queue("default", connection=client).enqueue(rq_jobs.add, 1)

    assert str(uuid.UUID(job.id)) == job.id


def test_no_timeout_reads_minus_one(client: Client) -> None:
    queue = Queue("default", connection=client)
    job = queue.enqueue(rq_jobs.add, 1, job_timeout=-1)

    assert job.timeout == -1
    assert Job.fetch(job.id, client).timeout == -1


def test_reserved_keywords_are_options(client: Client) -> None:
    queue = Queue("default", connection=client)
    job = queue.enqueue(
        rq_jobs.add,
        2,
        job_timeout="5m",
        result_ttl=0,
        ttl=60,
        failure_ttl=300,
        description="adding",
        job_id="my-job_1",
        meta={"owner": "ada"},
        retry=Retry(max=2, interval=[1, 2]),
    )

    assert job.id == "my-job_1"
    assert job.timeout == 300
    assert job.result_ttl == 0
    assert job.ttl == 60
    assert job.failure_ttl == 300
    assert job.description == "adding"
    assert job.meta == {"owner": "ada"}
    assert job.retries_left == 2
    assert job.retry_intervals == [1, 2]
    assert job.args == (2,)
    assert job.kwargs == {}


def test_explicit_args_and_kwargs(client: Client) -> None:
    queue = Queue("default", connection=client)
    job = queue.enqueue(rq_jobs.echo, args=(1, 2), kwargs={"description": "not an option"})

    assert job.args == (1, 2)
    assert job.kwargs == {"description": "not an option"}
    with pytest.raises(ValueError, match="either positionally"):
        queue.enqueue(rq_jobs.echo, 1, args=(2,))


def test_enqueue_call_uses_timeout(client: Client) -> None:
    job = Queue("default", connection=client).enqueue_call(rq_jobs.add, args=(1, 2), timeout=30)

    assert job.timeout == 30


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(30, 30), ("30", 30), ("5s", 5), ("1m", 60), ("2h", 7200), ("1d", 86400), (-1, -1)],
)
def test_timeout_units(value: object, seconds: int) -> None:
    assert parse_timeout(value) == seconds


@pytest.mark.parametrize("value", [0, -2, "5y", "abc"])
def test_invalid_timeout_rejected(client: Client, value: object) -> None:
    with pytest.raises(ValueError):
        Queue("default", connection=client).enqueue(rq_jobs.add, 1, job_timeout=value)


def test_dotted_string_function(client: Client) -> None:
    job = Queue("default", connection=client).enqueue("tests.rq_jobs.add", 1, 2)

    assert job.func_name == "tests.rq_jobs.add"


def test_main_and_lambda_rejected(client: Client) -> None:
    queue = Queue("default", connection=client)

    def nested() -> None:
        return None

    with pytest.raises(ValueError, match="nested function"):
        queue.enqueue(nested)
    with pytest.raises(ValueError, match="lambda"):
        queue.enqueue(lambda: None)


@pytest.mark.parametrize("job_id", ["a:b", "with space", "", "x" * 201])
def test_invalid_job_id_rejected(client: Client, job_id: str) -> None:
    with pytest.raises(ValueError, match="invalid job id"):
        Queue("default", connection=client).enqueue(rq_jobs.add, 1, job_id=job_id)


def test_unstorable_argument_names_pickle(client: Client) -> None:
    queue = Queue("default", connection=client)

    with pytest.raises(SerializationError, match=r"argument 2 of tests\.rq_jobs\.echo") as info:
        queue.enqueue(rq_jobs.echo, 1, object())
    assert "serializer='pickle'" in str(info.value)
    assert queue.count == 0


def test_common_types_round_trip(client: Client) -> None:
    queue = Queue("default", connection=client)
    moment = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    key = uuid.uuid4()
    job = queue.enqueue(rq_jobs.echo, (1, 2), moment, key, b"raw", {3})

    fetched = Job.fetch(job.id, connection=client)
    assert fetched.args == ((1, 2), moment, key, b"raw", {3})


def test_pickle_serializer_opt_in(client: Client) -> None:
    queue = Queue("default", connection=client, serializer="pickle")
    job = queue.enqueue(rq_jobs.echo, complex(1, 2))

    assert Job.fetch(job.id, connection=client, serializer="pickle").args == (complex(1, 2),)
    assert burst([queue], client, serializer="pickle")
    assert Job.fetch(job.id, client, serializer="pickle").return_value() == [[complex(1, 2)], {}]


def test_at_front(client: Client) -> None:
    queue = Queue("default", connection=client)
    first = queue.enqueue(rq_jobs.add, 1)
    front = queue.enqueue(rq_jobs.add, 2, at_front=True)

    assert queue.job_ids == [front.id, first.id]


def test_reused_id_is_not_pushed_twice(client: Client) -> None:
    queue = Queue("default", connection=client)
    queue.enqueue(rq_jobs.add, 1, job_id="same")
    again = queue.enqueue(rq_jobs.add, 2, job_id="same")

    assert queue.job_ids == ["same"]
    assert again.args == (1,)
    with pytest.raises(DuplicateJobError):
        queue.enqueue(rq_jobs.add, 3, job_id="same", unique=True)


def test_enqueue_at_and_in_are_scheduled(client: Client) -> None:
    queue = Queue("default", connection=client)
    later = datetime.now(UTC) + timedelta(hours=1)
    at_job = queue.enqueue_at(later, rq_jobs.add, 1)
    in_job = queue.enqueue_in(timedelta(minutes=5), rq_jobs.add, 2)

    assert at_job.get_status() == JobStatus.SCHEDULED
    assert in_job.get_status() == JobStatus.SCHEDULED
    assert queue.count == 0
    registry = queue.scheduled_job_registry
    assert registry.get_job_ids() == [in_job.id, at_job.id]
    assert abs(registry.get_scheduled_time(at_job) - later) < timedelta(seconds=1)


def test_scheduled_job_has_no_enqueue_time(client: Client) -> None:
    queue = Queue("default", connection=client)
    job = queue.enqueue_at(datetime.now(UTC) - timedelta(minutes=1), rq_jobs.add, 1)

    assert job.enqueued_at is None
    assert Job.fetch(job.id, client).enqueued_at is None
    before_run = datetime.now(UTC) - timedelta(seconds=1)
    assert burst([queue], client, with_scheduler=True)
    enqueued_at = Job.fetch(job.id, client).enqueued_at
    assert enqueued_at is not None
    assert enqueued_at >= before_run


def test_past_enqueue_at_runs(client: Client) -> None:
    queue = Queue("default", connection=client)
    job = queue.enqueue_at(datetime.now(UTC) - timedelta(minutes=1), rq_jobs.add, 1, 2)

    assert burst([queue], client, with_scheduler=True)
    assert job.get_status() == JobStatus.FINISHED
    assert job.return_value() == 3


def test_enqueue_many(client: Client) -> None:
    queue = Queue("default", connection=client)
    jobs = queue.enqueue_many(
        [
            Queue.prepare_data(rq_jobs.add, (1, 2), job_id="first"),
            Queue.prepare_data(rq_jobs.add, (3, 4), timeout=10),
        ]
    )

    assert jobs[0].id == "first"
    assert jobs[1].timeout == 10
    assert queue.count == 2


def test_enqueue_many_mixed_dependencies(client: Client) -> None:
    queue = Queue("default", connection=client)
    parent = queue.enqueue_in(600, rq_jobs.add, 0)
    jobs = queue.enqueue_many(
        [
            Queue.prepare_data(rq_jobs.add, (1,)),
            Queue.prepare_data(rq_jobs.add, (2,), depends_on=parent),
            Queue.prepare_data(rq_jobs.add, (3,), at_front=True),
        ]
    )

    statuses = [job.get_status() for job in jobs]
    assert statuses == [JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.QUEUED]
    assert queue.job_ids == [jobs[2].id, jobs[0].id]
    assert jobs[0].enqueued_at is not None
    assert jobs[1].enqueued_at is None
    assert jobs[2].enqueued_at is not None
    assert jobs[1].dependency_ids == [parent.id]


def test_empty_returns_count(client: Client) -> None:
    queue = Queue("default", connection=client)
    jobs = [queue.enqueue(rq_jobs.add, i) for i in range(3)]

    assert queue.empty() == 3
    assert queue.count == 0
    with pytest.raises(NoSuchJobError):
        Job.fetch(jobs[0].id, connection=client)


def test_fetch_job_unknown_is_none(client: Client) -> None:
    queue = Queue("default", connection=client)

    assert queue.fetch_job("missing") is None
    with pytest.raises(NoSuchJobError):
        Job.fetch("missing", connection=client)


def test_redis_connection_accepted(redis_url: str) -> None:
    connection = redis.Redis.from_url(redis_url)
    queue = Queue(f"plain-{uuid.uuid4().hex[:8]}", connection=connection)
    try:
        job = queue.enqueue(rq_jobs.add, 1)
        assert Job.fetch(job.id, connection=connection).func_name == "tests.rq_jobs.add"
    finally:
        queue.empty()
        connection.close()


def test_classmethod_function(client: Client) -> None:
    queue = Queue("default", connection=client)
    job = queue.enqueue(rq_jobs.Tasks.double, 4)

    assert job.func_name == "tests.rq_jobs.Tasks.double"
    assert burst([queue], client)
    assert job.return_value() == 8


def test_inline_queue_runs_at_enqueue(client: Client) -> None:
    queue = Queue("default", connection=client, is_async=False)
    job = queue.enqueue(rq_jobs.add, 1, 2)

    assert job.get_status() == JobStatus.FINISHED
    assert job.return_value() == 3
    assert queue.count == 0


def test_inline_failure_not_raised_nor_retried(client: Client) -> None:
    queue = Queue("default", connection=client, is_async=False)
    job = queue.enqueue(rq_jobs.fail, "inline", retry=Retry(max=3))

    assert job.get_status() == JobStatus.FAILED
    assert job.id in queue.failed_job_registry
    result = job.latest_result()
    assert result is not None
    assert "ValueError: inline" in (result.exc_string or "")


def test_inline_queue_worker_name(client: Client) -> None:
    job = Queue("default", connection=client, is_async=False).enqueue(rq_jobs.add, 1)

    assert job.worker_name == "sync"


def test_inline_queue_keeps_schedule(client: Client) -> None:
    queue = Queue("default", connection=client, is_async=False)
    job = queue.enqueue_in(timedelta(minutes=5), rq_jobs.add, 1)

    assert job.get_status() == JobStatus.SCHEDULED
    assert job.id in queue.scheduled_job_registry
    assert job.latest_result() is None


def test_inline_queue_defers_dependent(client: Client) -> None:
    parent = Queue("parents", connection=client).enqueue(rq_jobs.add, 1)
    queue = Queue("default", connection=client, is_async=False)
    child = queue.enqueue(rq_jobs.add, 2, depends_on=parent)

    assert child.get_status() == JobStatus.DEFERRED
    assert child.id in queue.deferred_job_registry
    # The released dependent waits in its queue for a worker, as in RQ.
    assert burst(["parents"], client)
    assert child.get_status() == JobStatus.QUEUED
    assert queue.job_ids == [child.id]

    finished_parent = Queue("default", connection=client, is_async=False)
    after = finished_parent.enqueue(rq_jobs.add, 3, depends_on=parent)
    assert after.get_status() == JobStatus.FINISHED
