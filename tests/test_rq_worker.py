"""`oxanus_sync.rq.Worker`: running jobs with RQ's semantics on threads."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from oxanus_sync import Client
from oxanus_sync.rq import Callback, Queue, Retry, SimpleWorker, Worker
from oxanus_sync.rq.job import Job, JobStatus
from oxanus_sync.rq.results import Result
from tests import rq_jobs
from tests.helpers import wait_until
from tests.rq_helpers import FAST, burst, worker_thread


@pytest.fixture
def client(redis_url: str, namespace: str) -> Iterator[Client]:
    client = Client(redis.Redis.from_url(redis_url), namespace=namespace)
    yield client
    client.close()


def _log(client: Client, key: str) -> list[str]:
    return [item.decode() for item in client.redis.lrange(key, 0, -1)]


def test_burst_returns_whether_jobs_ran(client: Client) -> None:
    queue = Queue("default", connection=client)

    assert burst([queue], client) is False
    job = queue.enqueue(rq_jobs.add, 1, 2)
    assert burst([queue], client) is True
    assert job.get_status() == JobStatus.FINISHED
    assert job.return_value() == 3
    assert job.result == 3
    assert job.started_at is not None
    assert job.ended_at is not None
    assert job.worker_name is not None


def test_simple_worker_is_worker(client: Client) -> None:
    queue = Queue("default", connection=client)
    queue.enqueue(rq_jobs.add, 1)

    assert SimpleWorker([queue], settings=FAST).work(burst=True)


def test_max_jobs_stops_worker(client: Client) -> None:
    queue = Queue("default", connection=client)
    jobs = [queue.enqueue(rq_jobs.add, i) for i in range(3)]

    assert burst([queue], client, max_jobs=2)
    statuses = [job.get_status() for job in jobs]
    assert statuses == [JobStatus.FINISHED, JobStatus.FINISHED, JobStatus.QUEUED]


def test_strict_queue_priority(client: Client, namespace: str) -> None:
    high = Queue("high", connection=client)
    low = Queue("low", connection=client)
    log = f"{namespace}:log"
    low.enqueue(rq_jobs.record, log, "lo")
    high.enqueue(rq_jobs.record, log, "hi1")
    high.enqueue(rq_jobs.record, log, "hi2")

    assert burst([high, low], client)
    assert [entry.split(":", 1)[1] for entry in _log(client, log)] == ["hi1", "hi2", "lo"]


def test_queues_by_name(client: Client) -> None:
    Queue("named", connection=client).enqueue(rq_jobs.add, 1)

    assert Worker(["named"], connection=client, settings=FAST).work(burst=True)


def test_failure_goes_to_failed_registry(client: Client) -> None:
    queue = Queue("default", connection=client)
    job = queue.enqueue(rq_jobs.fail, "broken")

    assert burst([queue], client)
    assert job.get_status() == JobStatus.FAILED
    assert job.id in queue.failed_job_registry
    assert len(queue.failed_job_registry) == 1
    assert "ValueError: broken" in (job.exc_info or "")
    result = job.latest_result()
    assert result is not None
    assert result.type == Result.Type.FAILED
    assert "ValueError: broken" in (result.exc_string or "")
    assert job.return_value() is None


def test_exc_info_read_from_redis(client: Client) -> None:
    queue = Queue("default", connection=client)
    job = queue.enqueue(rq_jobs.fail, "stale")
    burst([queue], client)

    # The object from enqueue() was not refreshed; RQ reads exc_info from the results anyway.
    assert "ValueError: stale" in (job.exc_info or "")
    job.requeue()
    assert "ValueError: stale" in (job.exc_info or "")


def test_result_type_is_plain_enum(client: Client) -> None:
    queue = Queue("default", connection=client)
    job = queue.enqueue(rq_jobs.add, 1)
    burst([queue], client)
    result = job.latest_result()

    assert result is not None
    assert result.type == Result.Type.SUCCESSFUL
    assert result.type.value == 1
    assert str(result.type) == "Type.SUCCESSFUL"
    with pytest.raises(TypeError):
        int(result.type)


def test_exc_info_none_while_retry_waits(client: Client) -> None:
    queue = Queue("default", connection=client)
    job = queue.enqueue(rq_jobs.fail, retry=Retry(max=1, interval=600))
    burst([queue], client)

    assert job.get_status() == JobStatus.SCHEDULED
    assert job.exc_info is None
    assert job.latest_result() is None


def test_failed_job_shows_as_dead_in_stats(client: Client) -> None:
    queue = Queue("default", connection=client)
    queue.enqueue(rq_jobs.fail)
    queue.enqueue(rq_jobs.add, 1)

    burst([queue], client)
    (counts,) = client.stats(["default"])
    assert counts.dead == 1
    assert counts.succeeded == 1
    assert "default" in client.queues()


def test_retry_without_interval_in_one_burst(client: Client, namespace: str) -> None:
    queue = Queue("default", connection=client)
    log = f"{namespace}:log"
    job = queue.enqueue(
        rq_jobs.fail,
        "again",
        retry=Retry(max=2),
        on_failure=Callback(rq_jobs.on_failure),
        meta={"log": log},
    )

    burst([queue], client)
    assert job.get_status() == JobStatus.FAILED
    assert job.retries_left == 0
    assert _log(client, log) == ["failure:ValueError"] * 3
    assert [result.type for result in job.results()] == [Result.Type.FAILED]


def test_retry_with_interval_is_scheduled(client: Client) -> None:
    queue = Queue("default", connection=client)
    job = queue.enqueue(rq_jobs.fail, retry=Retry(max=1, interval=600))

    burst([queue], client)
    assert job.get_status() == JobStatus.SCHEDULED
    assert job.id in queue.scheduled_job_registry
    assert job.retries_left == 0


def test_retry_interval_list_rq_order() -> None:
    intervals = [1, 3]
    gaps = [Retry.get_interval(left, intervals) for left in (3, 2, 1)]

    assert gaps == [1, 1, 3]


def test_retry_runs_after_interval(client: Client) -> None:
    queue = Queue("default", connection=client)
    job = queue.enqueue(rq_jobs.fail, retry=Retry(max=1, interval=1))

    with worker_thread([queue], client):
        wait_until(lambda: job.get_status() == JobStatus.FAILED, 20, "the retry failed")
    assert job.retries_left == 0


def test_success_callback(client: Client, namespace: str) -> None:
    queue = Queue("default", connection=client)
    log = f"{namespace}:log"
    job = queue.enqueue(rq_jobs.add, 2, 3, on_success=rq_jobs.on_success, meta={"log": log})

    burst([queue], client)
    assert job.get_status() == JobStatus.FINISHED
    assert _log(client, log) == ["success:5"]


def test_raising_success_callback_fails_job(client: Client) -> None:
    queue = Queue("default", connection=client)
    job = queue.enqueue(rq_jobs.add, 1, on_success=Callback("tests.rq_jobs.failing_callback"))

    burst([queue], client)
    assert job.get_status() == JobStatus.FAILED
    assert "callback broke" in (job.exc_info or "")


def test_exception_handlers_chain(client: Client) -> None:
    queue = Queue("default", connection=client)
    seen: list[str] = []

    def first(job: Job, exc_type: type, exc_value: BaseException, tb: Any) -> bool:
        seen.append(f"first:{exc_type.__name__}")
        return False

    def second(job: Job, exc_type: type, exc_value: BaseException, tb: Any) -> None:
        seen.append("second")

    queue.enqueue(rq_jobs.fail)
    burst([queue], client, exception_handlers=[first, second])
    assert seen == ["first:ValueError"]


def test_default_handler_disabled(client: Client) -> None:
    queue = Queue("default", connection=client)
    job = queue.enqueue(rq_jobs.fail)

    burst([queue], client, disable_default_exception_handler=True)
    assert job.get_status() == JobStatus.FAILED
    assert job.id not in queue.failed_job_registry


def test_result_ttl_zero_deletes_job(client: Client) -> None:
    queue = Queue("default", connection=client)
    job = queue.enqueue(rq_jobs.add, 1, result_ttl=0)

    burst([queue], client)
    assert not Job.exists(job.id, client)
    assert job.id not in queue.finished_job_registry


def test_result_ttl_sets_expiry(client: Client) -> None:
    queue = Queue("default", connection=client)
    kept = queue.enqueue(rq_jobs.add, 1)
    forever = queue.enqueue(rq_jobs.add, 2, result_ttl=-1)

    burst([queue], client)
    assert kept.id in queue.finished_job_registry
    assert queue.finished_job_registry.get_expiration_time(kept) is not None
    assert queue.finished_job_registry.get_expiration_time(forever) is None
    ttl_ms = client.redis.pttl(f"{client.namespace}:{{default}}:rq:job:{kept.id}")
    assert 0 < ttl_ms <= 500_000
    assert client.redis.pttl(f"{client.namespace}:{{default}}:rq:job:{forever.id}") == -1


def test_get_current_job_per_thread(client: Client) -> None:
    queue = Queue("default", connection=client)
    jobs = [queue.enqueue(rq_jobs.current_job_id, 0.2) for _ in range(4)]

    burst([queue], client, concurrency=4)
    assert [job.return_value() for job in jobs] == [job.id for job in jobs]


def test_concurrency_uses_threads(client: Client, namespace: str) -> None:
    queue = Queue("default", connection=client)
    gate = f"{namespace}:gate"
    jobs = [queue.enqueue(rq_jobs.wait_for_key, gate) for _ in range(3)]

    with worker_thread([queue], client, concurrency=3) as worker:
        wait_until(lambda: len(queue.started_job_registry) == 3, 20, "three jobs ran at once")
        client.redis.set(gate, 1)
        wait_until(
            lambda: all(job.get_status() == JobStatus.FINISHED for job in jobs),
            20,
            "the jobs finished",
        )
    assert worker.concurrency == 3


def test_default_runs_one_job_at_a_time(client: Client, namespace: str) -> None:
    queue = Queue("default", connection=client)
    gate = f"{namespace}:gate"
    first = queue.enqueue(rq_jobs.wait_for_key, gate)
    second = queue.enqueue(rq_jobs.add, 1)

    with worker_thread([queue], client):
        wait_until(lambda: first.get_status() == JobStatus.STARTED, 20, "the first job started")
        assert second.get_status() == JobStatus.QUEUED
        assert queue.started_job_registry.get_job_ids() == [first.id]
        client.redis.set(gate, 1)
        wait_until(lambda: second.get_status() == JobStatus.FINISHED, 20, "the second finished")


def test_worker_from_non_main_thread(client: Client) -> None:
    queue = Queue("default", connection=client)
    job = queue.enqueue(rq_jobs.thread_name)
    outcome: list[bool] = []

    thread = threading.Thread(
        target=lambda: outcome.append(Worker([queue], settings=FAST).work(burst=True))
    )
    thread.start()
    thread.join(timeout=30)
    assert outcome == [True]
    assert str(job.return_value()).startswith("oxanus-rq")


def test_meta_progress_visible(client: Client) -> None:
    queue = Queue("default", connection=client)
    job = queue.enqueue(rq_jobs.progress, 3)

    burst([queue], client)
    assert job.get_meta() == {"step": 3}
    assert job.meta == {"step": 3}


def test_latest_result_waits(client: Client) -> None:
    queue = Queue("default", connection=client)
    job = queue.enqueue(rq_jobs.add, 4, 5)

    assert job.latest_result() is None
    assert job.latest_result(timeout=0.2) is None
    with worker_thread([queue], client):
        result = job.latest_result(timeout=20)
    assert result is not None
    assert result.type == Result.Type.SUCCESSFUL
    assert result.return_value == 9


def test_timeout_interrupts_python_code(client: Client) -> None:
    queue = Queue("default", connection=client)
    job = queue.enqueue(rq_jobs.busy_loop, 30, job_timeout=1)

    with worker_thread([queue], client):
        wait_until(lambda: job.get_status() == JobStatus.FAILED, 20, "the job timed out")
    assert "JobTimeoutException" in (job.exc_info or "")
    assert job.return_value() is None


def test_timeout_discards_late_result(client: Client) -> None:
    queue = Queue("default", connection=client)
    job = queue.enqueue(rq_jobs.sleep, 3, job_timeout=1, retry=Retry(max=1, interval=600))

    with worker_thread([queue], client):
        wait_until(lambda: job.get_status() == JobStatus.SCHEDULED, 20, "the timeout retried")
        assert job.retries_left == 0
        wait_until(lambda: len(queue.started_job_registry) == 0, 20, "the sleep returned")
    assert job.get_status() == JobStatus.SCHEDULED
    assert job.return_value() is None


def test_one_fetcher_for_all_queues(client: Client, namespace: str) -> None:
    queues = [Queue(name, connection=client) for name in ("a", "b", "c")]
    gate = f"{namespace}:gate"
    job = queues[2].enqueue(rq_jobs.wait_for_key, gate)

    with worker_thread(queues, client, concurrency=2):
        wait_until(lambda: job.is_started, 20, "the job started")
        fetchers = [t for t in threading.enumerate() if t.name.startswith("oxanus-rq-fetch")]
        assert len(fetchers) == 1
        client.redis.set(gate, 1)
        wait_until(lambda: job.is_finished, 20, "the job finished")


def test_canceled_job_sees_stop_request(client: Client, namespace: str) -> None:
    queue = Queue("default", connection=client)
    log = f"{namespace}:log"
    job = queue.enqueue(rq_jobs.until_stop_requested, job_timeout=-1, meta={"log": log})

    with worker_thread([queue], client):
        wait_until(lambda: job.is_started, 20, "the job started")
        job.cancel()
        wait_until(lambda: client.redis.llen(log) == 1, 20, "the job saw the stop request")
        wait_until(lambda: len(queue.started_job_registry) == 0, 20, "the job returned")
    assert job.get_status() == JobStatus.CANCELED
    assert job.return_value() is None


@pytest.mark.parametrize("queue_names", [["only"], ["high", "low"]])
def test_idle_worker_waits_and_stops(client: Client, queue_names: list[str]) -> None:
    # BLMOVE waits up to block_timeout_s; stopping must wake it instead of waiting that long.
    settings = dataclasses.replace(FAST, block_timeout_s=120.0)
    worker = Worker(queue_names, connection=client, settings=settings)
    thread = threading.Thread(target=worker.work, name="rq-idle-worker")
    thread.start()
    try:
        wait_until(lambda: client.processes(), 20, "the worker registered")
        for name in reversed(queue_names):
            job = Queue(name, connection=client).enqueue(rq_jobs.add, 1, 2)
            wait_until(lambda job=job: job.is_finished, 20, f"the job of {name} ran")
    finally:
        worker.request_stop()
        thread.join(timeout=30)
    assert not thread.is_alive(), "the idle worker did not stop within 30 s"
