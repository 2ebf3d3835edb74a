"""`oxanus_sync.rq.Job` control, dependencies, registries and the `@job` decorator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from oxanus_sync import Client
from oxanus_sync.rq import Dependency, Queue, cancel_job, requeue_job
from oxanus_sync.rq.decorators import job
from oxanus_sync.rq.exceptions import InvalidJobOperation, NoSuchJobError
from oxanus_sync.rq.job import Job, JobStatus
from oxanus_sync.rq.registry import (
    CanceledJobRegistry,
    DeferredJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from tests import rq_jobs
from tests.helpers import wait_until
from tests.rq_helpers import burst, worker_thread


@pytest.fixture
def client(redis_url: str, namespace: str) -> Iterator[Client]:
    client = Client(redis.Redis.from_url(redis_url), namespace=namespace)
    yield client
    client.close()


def test_job_status_values() -> None:
    assert [status.value for status in JobStatus] == [
        "queued",
        "finished",
        "failed",
        "started",
        "deferred",
        "scheduled",
        "stopped",
        "canceled",
        "created",
        "rate_limited",
        "ready_to_enqueue",
    ]


def test_fetch_many_and_exists(client: Client) -> None:
    queue = Queue("default", connection=client)
    first = queue.enqueue(rq_jobs.add, 1)

    assert Job.exists(first.id, client)
    assert not Job.exists("missing", client)
    fetched = Job.fetch_many([first.id, "missing"], connection=client)
    assert fetched[0] == first
    assert fetched[1] is None


def test_cancel_removes_from_queue(client: Client) -> None:
    queue = Queue("default", connection=client)
    job = queue.enqueue(rq_jobs.add, 1)

    job.cancel()
    assert job.get_status() == JobStatus.CANCELED
    assert job.is_canceled
    assert queue.count == 0
    assert job.id in queue.canceled_job_registry
    with pytest.raises(InvalidJobOperation):
        job.cancel()
    assert burst([queue], client) is False


def test_cancel_job_by_id(client: Client) -> None:
    queue = Queue("default", connection=client)
    job = queue.enqueue_in(600, rq_jobs.add, 1)

    cancel_job(job.id, client)
    assert job.get_status() == JobStatus.CANCELED
    assert job.id not in queue.scheduled_job_registry


def test_requeue_only_failed(client: Client) -> None:
    queue = Queue("default", connection=client)
    job = queue.enqueue(rq_jobs.add, 1)

    with pytest.raises(InvalidJobOperation):
        job.requeue()
    bad = queue.enqueue(rq_jobs.fail)
    burst([queue], client)
    assert bad.is_failed

    bad.requeue()
    assert bad.get_status() == JobStatus.QUEUED
    assert bad.id in queue.job_ids
    assert bad.id not in queue.failed_job_registry
    assert bad.started_at is None


def test_requeue_job_and_registry(client: Client) -> None:
    queue = Queue("default", connection=client)
    first = queue.enqueue(rq_jobs.fail)
    second = queue.enqueue(rq_jobs.fail)
    burst([queue], client)

    requeue_job(first.id, client)
    queue.failed_job_registry.requeue(second.id)
    assert set(queue.job_ids) == {first.id, second.id}
    assert queue.failed_job_registry.count == 0


def test_delete_removes_everything(client: Client) -> None:
    queue = Queue("default", connection=client)
    job = queue.enqueue(rq_jobs.add, 1)

    job.delete()
    assert queue.count == 0
    with pytest.raises(NoSuchJobError):
        Job.fetch(job.id, client)
    with pytest.raises(InvalidJobOperation):
        job.get_status()


def test_delete_finished_job(client: Client) -> None:
    queue = Queue("default", connection=client)
    job = queue.enqueue(rq_jobs.add, 1)
    burst([queue], client)

    job.delete()
    assert job.id not in queue.finished_job_registry
    assert not Job.exists(job.id, client)


def test_dependency_defers_until_finished(client: Client) -> None:
    queue = Queue("default", connection=client)
    parent = queue.enqueue_in(600, rq_jobs.add, 1)
    child = queue.enqueue(rq_jobs.add, 2, depends_on=parent)

    assert child.get_status() == JobStatus.DEFERRED
    assert child.id in queue.deferred_job_registry
    assert child.dependency_ids == [parent.id]
    assert queue.count == 0
    assert burst([queue], client) is False
    assert child.get_status() == JobStatus.DEFERRED


def test_deferred_job_enqueue_time(client: Client) -> None:
    queue = Queue("default", connection=client)
    parent = queue.enqueue(rq_jobs.add, 1)
    child = queue.enqueue(rq_jobs.add, 2, depends_on=parent)

    assert child.enqueued_at is None
    assert Job.fetch(child.id, client).enqueued_at is None
    burst([queue], client)
    released = Job.fetch(child.id, client)
    assert released.get_status() == JobStatus.FINISHED
    assert released.enqueued_at is not None
    assert parent.enqueued_at is not None
    assert released.enqueued_at >= parent.enqueued_at


def test_dependency_released_after_parent(client: Client, namespace: str) -> None:
    queue = Queue("default", connection=client)
    log = f"{namespace}:log"
    parent = queue.enqueue(rq_jobs.record, log, "parent")
    child = queue.enqueue(rq_jobs.record, log, "child", depends_on=parent)

    burst([queue], client)
    assert child.get_status() == JobStatus.FINISHED
    entries = [entry.decode().split(":", 1)[1] for entry in client.redis.lrange(log, 0, -1)]
    assert entries == ["parent", "child"]


def test_dependency_on_finished_job_runs_at_once(client: Client) -> None:
    queue = Queue("default", connection=client)
    parent = queue.enqueue(rq_jobs.add, 1)
    burst([queue], client)

    child = queue.enqueue(rq_jobs.add, 2, depends_on=parent)
    assert child.get_status() == JobStatus.QUEUED


def test_failed_parent_keeps_dependent_deferred(client: Client) -> None:
    queue = Queue("default", connection=client)
    parent = queue.enqueue(rq_jobs.fail)
    child = queue.enqueue(rq_jobs.add, 1, depends_on=parent)
    tolerant = queue.enqueue(
        rq_jobs.add, 2, depends_on=Dependency(jobs=[parent], allow_failure=True)
    )

    burst([queue], client)
    assert child.get_status() == JobStatus.DEFERRED
    assert tolerant.get_status() == JobStatus.FINISHED


def test_dependency_across_queues(client: Client) -> None:
    first = Queue("first", connection=client)
    second = Queue("second", connection=client)
    parent = first.enqueue(rq_jobs.add, 1)
    child = second.enqueue(rq_jobs.add, 2, depends_on=parent.id)

    assert child.get_status() == JobStatus.DEFERRED
    burst([first, second], client)
    assert child.get_status() == JobStatus.FINISHED


def test_dependency_at_front(client: Client) -> None:
    queue = Queue("default", connection=client)
    parent = queue.enqueue(rq_jobs.add, 1)
    waiting = queue.enqueue(rq_jobs.add, 2)
    child = queue.enqueue(rq_jobs.add, 3, depends_on=Dependency(jobs=parent, enqueue_at_front=True))

    assert child.is_deferred
    burst([queue], client, max_jobs=1)
    assert parent.is_finished
    assert queue.job_ids == [child.id, waiting.id]


def test_registry_remove_returns_count(client: Client) -> None:
    queue = Queue("default", connection=client)
    done = queue.enqueue(rq_jobs.add, 1)
    failed = queue.enqueue(rq_jobs.fail)
    burst([queue], client)
    canceled = queue.enqueue(rq_jobs.add, 2)
    canceled.cancel()

    assert queue.finished_job_registry.remove(done) == 1
    assert queue.finished_job_registry.remove(done.id) == 0
    assert done.get_status() == JobStatus.FINISHED
    assert queue.canceled_job_registry.remove(canceled) == 1
    assert canceled.get_status() == JobStatus.CANCELED
    assert queue.failed_job_registry.remove(failed, delete_job=True) == 1
    assert queue.failed_job_registry.remove(failed, delete_job=True) == 0
    assert not Job.exists(failed.id, client)


def test_failed_registry_remove_keeps_job(client: Client) -> None:
    queue = Queue("default", connection=client)
    job = queue.enqueue(rq_jobs.fail)
    burst([queue], client)

    assert queue.failed_job_registry.remove(job) == 1
    assert job.id not in queue.failed_job_registry
    assert job.get_status() == JobStatus.FAILED
    assert Job.fetch(job.id, client).is_failed
    with pytest.raises(InvalidJobOperation):
        job.requeue()
    (counts,) = client.stats(["default"])
    assert counts.dead == 0


def test_registries_by_name(client: Client) -> None:
    queue = Queue("default", connection=client)
    done = queue.enqueue(rq_jobs.add, 1)
    broken = queue.enqueue(rq_jobs.fail)
    burst([queue], client)

    finished = FinishedJobRegistry("default", connection=client)
    failed = FailedJobRegistry("default", connection=client)
    assert finished.get_job_ids() == [done.id]
    assert done in finished
    assert done.id in finished
    assert len(failed) == 1
    assert broken in failed
    assert StartedJobRegistry("default", connection=client).count == 0
    assert DeferredJobRegistry("default", connection=client).count == 0
    assert ScheduledJobRegistry("default", connection=client).count == 0
    assert CanceledJobRegistry("default", connection=client).count == 0

    finished.remove(done)
    assert done.id not in finished
    failed.remove(broken, delete_job=True)
    assert len(failed) == 0


def test_started_registry_while_running(client: Client, namespace: str) -> None:
    queue = Queue("default", connection=client)
    gate = f"{namespace}:gate"
    job = queue.enqueue(rq_jobs.wait_for_key, gate)

    with worker_thread([queue], client):
        wait_until(lambda: job.id in queue.started_job_registry, 20, "the job started")
        assert job.is_started
        client.redis.set(gate, 1)
        wait_until(lambda: job.is_finished, 20, "the job finished")
    assert job.id not in queue.started_job_registry


def test_job_decorator(client: Client) -> None:
    queue = Queue("default", connection=client)

    @job(queue, timeout=30, result_ttl=600)
    def double(x: int) -> int:
        return 2 * x

    assert double(2) == 4
    with pytest.raises(ValueError, match="nested function"):
        double.delay(3)  # type: ignore[attr-defined]

    decorated = job("decorated", connection=client, timeout="1m")(rq_jobs.add)
    queued = decorated.delay(1, 2, job_id="from-delay")  # type: ignore[attr-defined]
    assert queued.id == "from-delay"
    assert queued.timeout == 60
    assert queued.origin == "decorated"
    assert burst(["decorated"], client)
    assert queued.return_value() == 3


def test_get_position(client: Client) -> None:
    queue = Queue("default", connection=client)
    first = queue.enqueue(rq_jobs.add, 1)
    second = queue.enqueue(rq_jobs.add, 2)

    assert first.get_position() == 0
    assert second.get_position() == 1
    assert queue.get_job_position(second.id) == 1


def test_cancel_running_job_stays_canceled(client: Client, namespace: str) -> None:
    queue = Queue("default", connection=client)
    gate = f"{namespace}:gate"
    running = queue.enqueue(rq_jobs.wait_for_key, gate)

    with worker_thread([queue], client):
        wait_until(lambda: running.is_started, 20, "the job started")
        running.cancel()
        client.redis.set(gate, 1)
        wait_until(lambda: len(queue.started_job_registry) == 0, 20, "the job ended")
    assert running.get_status() == JobStatus.CANCELED
    assert running.return_value() is None
    assert running.id in queue.canceled_job_registry


def test_ttl_expired_job_never_runs(client: Client) -> None:
    queue = Queue("default", connection=client)
    job = queue.enqueue(rq_jobs.add, 1, ttl=1)

    wait_until(lambda: not Job.exists(job.id, client), 20, "the job's ttl expired")
    assert burst([queue], client) is False
    assert queue.count == 0


def test_status_text_forms(client: Client) -> None:
    job = Queue("default", connection=client).enqueue(rq_jobs.add, 1)
    status = job.get_status()

    # JobStatus mixes str into Enum as RQ 3.0 does: equal to its value, named by str().
    assert status == "queued"
    assert status.value == "queued"
    assert str(status) == "JobStatus.QUEUED"
    assert f"{status}" == "JobStatus.QUEUED"
