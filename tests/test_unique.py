"""Unique jobs: one job per type and key while it exists, skip or replace, released at the end."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, ClassVar

import pytest
import redis

from oxanus_sync import (
    Client,
    ConfigurationError,
    Context,
    EnqueueError,
    EnqueueOutcome,
    Queue,
    QueueConfig,
    Runner,
    Worker,
)
from oxanus_sync.storage.keys import QueueKeys
from oxanus_sync.unique import OnConflict, unique_field
from tests.crash_app import QUEUE_NAME as CRASH_QUEUE
from tests.crash_app import UniqueProbe, events_key
from tests.helpers import Recorder, RunnerProcess, build_config, started, wait_until

QUEUE = Queue("unique", QueueConfig(concurrency=2))

CONCURRENT_PROCESSES = 4
THREADS_PER_PROCESS = 25


class SyncTenant(Worker, name="tests.unique.SyncTenant"):
    tenant: str
    note: str = ""

    def unique_key(self) -> str:
        return self.tenant

    def process(self, ctx: Context[Recorder]) -> None:
        ctx.shared.add(("sync", self.tenant, self.note))


class ReplaceTenant(SyncTenant, name="tests.unique.ReplaceTenant"):
    unique_conflict: ClassVar[OnConflict] = "replace"

    def process(self, ctx: Context[Recorder]) -> None:
        ctx.shared.add(("replace", self.tenant, self.note))


class OtherType(SyncTenant, name="tests.unique.OtherType"):
    pass


class SlowTenant(ReplaceTenant, name="tests.unique.SlowTenant"):
    """Records its start, then waits until the recorder contains "release"."""

    def process(self, ctx: Context[Recorder]) -> None:
        ctx.shared.add(("start", self.tenant, self.note))
        wait_until(lambda: "release" in ctx.shared.events(), 20, "the test released the job")


class FailingTenant(SyncTenant, name="tests.unique.FailingTenant"):
    """Fails every attempt; retries wait `retry_delay`, dead after `max_retries`."""

    max_retries = 1

    def retry_delay(self, attempt: int) -> float | None:
        return 30.0

    def process(self, ctx: Context[Recorder]) -> None:
        ctx.shared.add(("fail", self.tenant, ctx.meta.attempt))
        raise RuntimeError(f"tenant {self.tenant} fails on purpose")


JOB_TYPES: list[type[Worker]] = [SyncTenant, ReplaceTenant, OtherType, SlowTenant, FailingTenant]


@pytest.fixture
def client(redis_url: str, namespace: str) -> Iterator[Client]:
    client = Client.from_url(redis_url, namespace=namespace)
    yield client
    client.close()


@pytest.fixture
def keys(namespace: str) -> QueueKeys:
    return QueueKeys.build(namespace, QUEUE.name)


def drain(client: Client, recorder: Recorder) -> None:
    config = build_config(client, [QUEUE], JOB_TYPES)
    Runner(config, context=recorder).drain(timeout_s=30)


def held_by(redis_client: redis.Redis, keys: QueueKeys, job_type: str, key: str) -> str | None:
    holder = redis_client.hget(keys.unique, unique_field(job_type, key))
    return holder.decode() if holder is not None else None


def test_skip_keeps_first_job(client: Client, keys: QueueKeys, redis_client: redis.Redis) -> None:
    first = client.enqueue(QUEUE, SyncTenant(tenant="acme", note="first"))
    second = client.enqueue(QUEUE, SyncTenant(tenant="acme", note="second"))

    assert first.outcome is EnqueueOutcome.CREATED
    assert second.outcome is EnqueueOutcome.SKIPPED
    assert second == first
    assert second.skipped
    assert redis_client.llen(keys.ready) == 1
    assert client.stats([QUEUE])[0].unique_keys == 1

    recorder = Recorder()
    drain(client, recorder)
    assert recorder.events() == [("sync", "acme", "first")]


def test_replace_gives_waiting_job_new_args(client: Client, redis_client: redis.Redis) -> None:
    first = client.enqueue(QUEUE, ReplaceTenant(tenant="acme", note="old"))
    second = client.enqueue(QUEUE, ReplaceTenant(tenant="acme", note="new"))

    assert second.outcome is EnqueueOutcome.REPLACED
    assert second == first
    assert second.replaced

    recorder = Recorder()
    drain(client, recorder)
    assert recorder.events() == [("replace", "acme", "new")]


def test_replace_moves_scheduled_job_to_ready(
    client: Client, keys: QueueKeys, redis_client: redis.Redis
) -> None:
    scheduled = client.enqueue_in(QUEUE, ReplaceTenant(tenant="acme", note="later"), 3600)
    now = client.enqueue(QUEUE, ReplaceTenant(tenant="acme", note="now"))

    assert now.replaced
    assert now == scheduled
    assert redis_client.zcard(keys.scheduled) == 0
    assert redis_client.lrange(keys.ready, 0, -1) == [scheduled.encode()]

    recorder = Recorder()
    drain(client, recorder)
    assert recorder.events() == [("replace", "acme", "now")]


def test_replace_moves_ready_job_to_scheduled(
    client: Client, keys: QueueKeys, redis_client: redis.Redis
) -> None:
    ready = client.enqueue(QUEUE, ReplaceTenant(tenant="acme", note="now"))
    later = client.enqueue_in(QUEUE, ReplaceTenant(tenant="acme", note="later"), 3600)

    assert later.replaced
    assert redis_client.llen(keys.ready) == 0
    assert redis_client.zrange(keys.scheduled, 0, -1) == [ready.encode()]
    assert b'"later"' in client.job(QUEUE, ready)["payload"]


def test_replace_of_running_job_is_skipped(client: Client) -> None:
    recorder = Recorder()
    config = build_config(client, [QUEUE], JOB_TYPES)
    running_id = client.enqueue(QUEUE, SlowTenant(tenant="acme", note="running"))

    with started(Runner(config, context=recorder)):
        wait_until(lambda: recorder.events(), 10, "the job started")
        again = client.enqueue(QUEUE, SlowTenant(tenant="acme", note="too late"))
        recorder.add("release")
        wait_until(lambda: client.job(QUEUE, running_id) == {}, 10, "the job finished")

    assert again.outcome is EnqueueOutcome.SKIPPED
    assert again == running_id
    assert recorder.events() == [("start", "acme", "running"), "release"]


def test_keys_scoped_by_type_and_queue(client: Client) -> None:
    other_queue = Queue("unique-other")
    outcomes = [
        client.enqueue(QUEUE, SyncTenant(tenant="acme")).outcome,
        client.enqueue(QUEUE, OtherType(tenant="acme")).outcome,
        client.enqueue(other_queue, SyncTenant(tenant="acme")).outcome,
        client.enqueue(QUEUE, SyncTenant(tenant="globex")).outcome,
    ]
    assert outcomes == [EnqueueOutcome.CREATED] * 4


def test_enqueue_many_dedupes_within_batch(client: Client, keys: QueueKeys) -> None:
    jobs = [
        SyncTenant(tenant="acme", note="1"),
        SyncTenant(tenant="globex", note="2"),
        SyncTenant(tenant="acme", note="3"),
        ReplaceTenant(tenant="acme", note="4"),
        ReplaceTenant(tenant="acme", note="5"),
    ]
    ids = client.enqueue_many(QUEUE, jobs)

    assert [job_id.outcome.value for job_id in ids] == [
        "created",
        "created",
        "skipped",
        "created",
        "replaced",
    ]
    assert ids[2] == ids[0]
    assert ids[4] == ids[3]

    recorder = Recorder()
    drain(client, recorder)
    assert sorted(recorder.events()) == [
        ("replace", "acme", "5"),
        ("sync", "acme", "1"),
        ("sync", "globex", "2"),
    ]


def test_success_releases_key(client: Client, keys: QueueKeys, redis_client: redis.Redis) -> None:
    client.enqueue(QUEUE, SyncTenant(tenant="acme"))
    drain(client, Recorder())

    assert client.stats([QUEUE])[0].unique_keys == 0
    assert client.enqueue(QUEUE, SyncTenant(tenant="acme")).created


def test_retry_holds_key_and_dead_releases_it(
    client: Client, keys: QueueKeys, redis_client: redis.Redis
) -> None:
    job_id = client.enqueue(QUEUE, FailingTenant(tenant="acme"))
    recorder = Recorder()
    config = build_config(client, [QUEUE], JOB_TYPES)
    with started(Runner(config, context=recorder)):
        wait_until(lambda: redis_client.zcard(keys.retry) == 1, 10, "the job waits to retry")

    assert client.enqueue(QUEUE, FailingTenant(tenant="acme")).skipped
    assert held_by(redis_client, keys, FailingTenant.job_name, "acme") == job_id

    # Make the retry due now, then let the second attempt fail for good.
    redis_client.zadd(keys.retry, {job_id: 0})
    drain(client, recorder)

    assert [job.id for job in client.dead_jobs(QUEUE)] == [job_id]
    assert held_by(redis_client, keys, FailingTenant.job_name, "acme") is None
    assert client.enqueue(QUEUE, FailingTenant(tenant="acme")).created


def test_dead_retry_takes_key_again(
    client: Client, keys: QueueKeys, redis_client: redis.Redis
) -> None:
    job_id = client.enqueue(QUEUE, FailingTenant(tenant="acme"))
    redis_client.hset(keys.job(job_id), "attempt", 1)
    drain(client, Recorder())
    assert held_by(redis_client, keys, FailingTenant.job_name, "acme") is None

    assert client.retry_dead(QUEUE, [job_id]) == 1
    assert held_by(redis_client, keys, FailingTenant.job_name, "acme") == job_id
    assert client.enqueue(QUEUE, FailingTenant(tenant="acme")).skipped


def test_cancel_releases_key(client: Client, keys: QueueKeys, redis_client: redis.Redis) -> None:
    job_id = client.enqueue_in(QUEUE, SyncTenant(tenant="acme"), 3600)

    assert client.cancel(QUEUE, job_id) == "cancelled"
    assert redis_client.hlen(keys.unique) == 0
    assert client.enqueue(QUEUE, SyncTenant(tenant="acme")).created


def test_key_of_vanished_job_is_taken_over(
    client: Client, keys: QueueKeys, redis_client: redis.Redis
) -> None:
    stale_id = client.enqueue(QUEUE, SyncTenant(tenant="acme"))
    redis_client.delete(keys.job(stale_id))

    fresh = client.enqueue(QUEUE, SyncTenant(tenant="acme"))

    assert fresh.created
    assert fresh != stale_id
    assert held_by(redis_client, keys, SyncTenant.job_name, "acme") == fresh


def test_invalid_unique_key_rejected(client: Client) -> None:
    class BadKey(Worker, name="tests.unique.BadKey"):
        def unique_key(self) -> str:
            return ""

    with pytest.raises(EnqueueError, match=r"BadKey.unique_key\(\) returned ''"):
        client.enqueue(QUEUE, BadKey())


def test_invalid_conflict_policy_rejected() -> None:
    with pytest.raises(ConfigurationError, match="unique_conflict is 'overwrite'"):

        class BadPolicy(Worker):
            unique_conflict = "overwrite"  # type: ignore[assignment]


def _enqueue_from_threads(url: str, namespace: str, start_at: float) -> list[tuple[str, str]]:
    """Enqueue the same unique job from THREADS_PER_PROCESS threads at `start_at`."""
    client = Client.from_url(url, namespace=namespace)
    barrier = threading.Barrier(THREADS_PER_PROCESS)

    def enqueue(index: int) -> tuple[str, str]:
        barrier.wait()
        job_id = client.enqueue(QUEUE, SyncTenant(tenant="acme", note=str(index)))
        return job_id.outcome.value, str(job_id)

    time.sleep(max(0.0, start_at - time.time()))
    with ThreadPoolExecutor(THREADS_PER_PROCESS) as pool:
        results = list(pool.map(enqueue, range(THREADS_PER_PROCESS)))
    client.close()
    return results


@pytest.mark.timeout(60)
def test_concurrent_enqueues_create_one_job(
    redis_url: str, namespace: str, keys: QueueKeys, redis_client: redis.Redis
) -> None:
    start_at = time.time() + 2.0
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(CONCURRENT_PROCESSES, mp_context=context) as pool:
        futures = [
            pool.submit(_enqueue_from_threads, redis_url, namespace, start_at)
            for _ in range(CONCURRENT_PROCESSES)
        ]
        results = [result for future in futures for result in future.result(timeout=40)]

    created = [job_id for outcome, job_id in results if outcome == "created"]
    skipped = [job_id for outcome, job_id in results if outcome == "skipped"]
    assert len(results) == CONCURRENT_PROCESSES * THREADS_PER_PROCESS
    assert len(created) == 1
    assert len(skipped) == len(results) - 1
    assert set(skipped) == set(created)
    assert redis_client.lrange(keys.ready, 0, -1) == [created[0].encode()]


def probe_starts(redis_client: redis.Redis, namespace: str) -> list[dict[str, Any]]:
    events = [json.loads(item) for item in redis_client.lrange(events_key(namespace), 0, -1)]
    return [event for event in events if event["step"] == "start"]


@pytest.mark.timeout(60)
def test_sigkill_keeps_key_until_rerun_finishes(
    start_runner: Callable[..., RunnerProcess],
    redis_client: redis.Redis,
    namespace: str,
    redis_url: str,
) -> None:
    client = Client.from_url(redis_url, namespace=namespace)
    keys = QueueKeys.build(namespace, CRASH_QUEUE)
    job_id = client.enqueue(CRASH_QUEUE, UniqueProbe(tag="report", seconds=1.0))
    doomed = start_runner("--lease", "1.0", "--heartbeat", "0.25")
    wait_until(lambda: probe_starts(redis_client, namespace), 10, "the job started")

    doomed.kill()
    # The orphaned job still has its key.
    assert client.enqueue(CRASH_QUEUE, UniqueProbe(tag="report", seconds=0.0)).skipped

    start_runner("--lease", "1.0", "--heartbeat", "0.25")
    start_runner("--lease", "1.0", "--heartbeat", "0.25")
    wait_until(lambda: client.job(CRASH_QUEUE, job_id) == {}, 20, "the rerun finished")

    assert len(probe_starts(redis_client, namespace)) == 2
    assert held_by(redis_client, keys, UniqueProbe.job_name, "report") is None
    assert client.enqueue(CRASH_QUEUE, UniqueProbe(tag="report", seconds=0.0)).created
    client.close()
