"""The dead set: listing, retrying, deleting and purging dead jobs, and its size and age bounds."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from oxanus_sync import (
    Client,
    ConfigurationError,
    Context,
    Queue,
    QueueConfig,
    Runner,
    RunnerSettings,
    Worker,
)
from oxanus_sync.runner import RunnerStats
from oxanus_sync.storage.keys import QueueKeys
from tests.helpers import Recorder, build_config, wait_until

# Concurrency 1 runs jobs in enqueue order, so they go dead in that order.
QUEUE = Queue("default", QueueConfig(concurrency=1))


class Doomed(Worker):
    """Fails at once with no retry, unless the shared recorder holds "heal"."""

    max_retries = 0
    label: str

    def process(self, ctx: Context[Recorder]) -> None:
        ctx.shared.add((self.label, ctx.meta.attempt))
        if "heal" not in ctx.shared.events():
            # Deaths a few milliseconds apart get distinct scores in the dead set.
            time.sleep(0.005)
            raise RuntimeError(f"{self.label} failed")


class DoomedWithRetries(Worker):
    max_retries = 2

    def retry_delay(self, attempt: int) -> float | None:
        return 0

    def process(self, ctx: Context[Recorder]) -> None:
        ctx.shared.add(ctx.meta.attempt)
        raise RuntimeError("fails every attempt")


@pytest.fixture
def client(redis_url: str, namespace: str) -> Iterator[Client]:
    client = Client.from_url(redis_url, namespace=namespace)
    yield client
    client.close()


def _drain(
    client: Client,
    recorder: Recorder,
    settings: RunnerSettings | None = None,
    queue: Queue = QUEUE,
) -> RunnerStats:
    config = build_config(client, [queue], [Doomed], settings)
    return Runner(config, context=recorder).drain(timeout_s=30)


def _job_keys(client: Client, queue: Queue = QUEUE) -> list[bytes]:
    job_prefix = QueueKeys.build(client.namespace, queue.name).job_prefix
    return list(client.redis.scan_iter(match=job_prefix + "*", count=1000))


def test_dead_jobs_newest_first(client: Client) -> None:
    ids = client.enqueue_many(QUEUE, [Doomed(label=str(i)) for i in range(4)])
    _drain(client, Recorder())

    dead = client.dead_jobs(QUEUE)

    assert [job.id for job in dead] == list(reversed(ids))
    assert all(job.queue == QUEUE.name for job in dead)
    dead_times = [job.dead_at_ms or 0 for job in dead]
    assert all(job.dead_at_ms is not None for job in dead)
    assert dead_times == sorted(dead_times, reverse=True)


def test_dead_jobs_offset_and_limit(client: Client) -> None:
    ids = client.enqueue_many(QUEUE, [Doomed(label=str(i)) for i in range(5)])
    _drain(client, Recorder())

    page = client.dead_jobs(QUEUE, offset=1, limit=2)

    assert [job.id for job in page] == [ids[3], ids[2]]


def test_dead_jobs_zero_limit(client: Client) -> None:
    client.enqueue_many(QUEUE, [Doomed(label=str(i)) for i in range(2)])
    _drain(client, Recorder())

    assert client.dead_jobs(QUEUE, limit=0) == []


def test_dead_jobs_of_empty_queue(client: Client) -> None:
    assert client.dead_jobs(QUEUE) == []


def test_retry_dead_runs_job_again(client: Client) -> None:
    recorder = Recorder()
    job_id = client.enqueue(QUEUE, Doomed(label="second chance"))
    _drain(client, recorder)
    recorder.add("heal")

    moved = client.retry_dead(QUEUE, [job_id])
    [counts] = client.stats([QUEUE])
    stats = _drain(client, recorder)

    assert moved == 1
    assert counts.dead == 0
    assert counts.ready == 1
    assert stats.succeeded == 1
    assert client.dead_jobs(QUEUE) == []
    assert client.job(QUEUE, job_id) == {}


def test_retry_dead_resets_attempt(client: Client) -> None:
    recorder = Recorder()
    job_id = client.enqueue(QUEUE, Doomed(label="second chance"))
    _drain(client, recorder)
    attempt_when_dead = client.dead_jobs(QUEUE)[0].attempt
    recorder.add("heal")

    client.retry_dead(QUEUE, [job_id])
    _drain(client, recorder)

    assert attempt_when_dead == 1
    assert recorder.events() == [("second chance", 1), "heal", ("second chance", 1)]


def test_retry_dead_gives_fresh_budget(client: Client) -> None:
    recorder = Recorder()
    config = build_config(client, [QUEUE], [DoomedWithRetries])
    job_id = client.enqueue(QUEUE, DoomedWithRetries())
    Runner(config, context=recorder).drain(timeout_s=20, include_scheduled=True)
    attempt_when_dead = client.dead_jobs(QUEUE)[0].attempt

    client.retry_dead(QUEUE, [job_id])
    Runner(config, context=recorder).drain(timeout_s=20, include_scheduled=True)

    assert attempt_when_dead == 3
    assert recorder.events() == [1, 2, 3, 1, 2, 3]
    assert client.dead_jobs(QUEUE)[0].attempt == 3


def test_retry_dead_unknown_id(client: Client) -> None:
    client.enqueue(QUEUE, Doomed(label="stays dead"))
    _drain(client, Recorder())

    assert client.retry_dead(QUEUE, ["no-such-job"]) == 0
    assert len(client.dead_jobs(QUEUE)) == 1


def test_retry_dead_many(client: Client) -> None:
    recorder = Recorder()
    ids = client.enqueue_many(QUEUE, [Doomed(label=str(i)) for i in range(3)])
    _drain(client, recorder)
    recorder.add("heal")

    moved = client.retry_dead(QUEUE, [*ids, "no-such-job"])
    stats = _drain(client, recorder)

    assert moved == 3
    assert stats.succeeded == 3


def test_delete_dead_removes_job_hash(client: Client) -> None:
    deleted_id, kept_id = client.enqueue_many(
        QUEUE, [Doomed(label="deleted"), Doomed(label="kept")]
    )
    _drain(client, Recorder())

    deleted = client.delete_dead(QUEUE, [deleted_id])

    assert deleted == 1
    assert [job.id for job in client.dead_jobs(QUEUE)] == [kept_id]
    assert client.job(QUEUE, deleted_id) == {}
    assert client.job(QUEUE, kept_id) != {}


def test_delete_dead_unknown_id(client: Client) -> None:
    client.enqueue(QUEUE, Doomed(label="stays dead"))
    _drain(client, Recorder())

    assert client.delete_dead(QUEUE, ["no-such-job"]) == 0
    assert client.delete_dead(QUEUE, []) == 0
    assert len(client.dead_jobs(QUEUE)) == 1


def test_delete_dead_ignores_live_job(client: Client) -> None:
    job_id = client.enqueue(QUEUE, Doomed(label="still ready"))

    assert client.delete_dead(QUEUE, [job_id]) == 0
    assert client.job(QUEUE, job_id) != {}


def test_purge_dead_empties_large_set(client: Client) -> None:
    queue = Queue("many", QueueConfig(concurrency=8))
    client.enqueue_many(queue, [Doomed(label=str(i)) for i in range(1200)])
    stats = _drain(client, Recorder(), queue=queue)

    purged = client.purge_dead(queue)

    assert stats.dead == 1200
    assert purged == 1200
    [counts] = client.stats([queue])
    assert counts.dead == 0
    assert _job_keys(client, queue) == []


def test_purge_dead_of_empty_set(client: Client) -> None:
    assert client.purge_dead(QUEUE) == 0


def test_dead_set_bounded_by_count(client: Client) -> None:
    settings = RunnerSettings(dead_max_jobs=5)

    ids = client.enqueue_many(QUEUE, [Doomed(label=str(i)) for i in range(8)])
    stats = _drain(client, Recorder(), settings)

    assert stats.dead == 8
    assert [job.id for job in client.dead_jobs(QUEUE)] == list(reversed(ids[3:]))
    assert len(_job_keys(client)) == 5
    for dropped_id in ids[:3]:
        assert client.job(QUEUE, dropped_id) == {}
    [counts] = client.stats([QUEUE])
    assert counts.dead == 5
    assert counts.dead_total == 8


def test_dead_set_bounded_by_age(client: Client) -> None:
    max_age_s = 0.3
    settings = RunnerSettings(dead_max_age_s=max_age_s)

    old_id = client.enqueue(QUEUE, Doomed(label="old"))
    _drain(client, Recorder(), settings)
    [old] = client.dead_jobs(QUEUE)
    assert old.dead_at_ms is not None
    old_dead_at_ms = old.dead_at_ms
    wait_until(
        lambda: client.storage.server_time_ms() > old_dead_at_ms + max_age_s * 1000,
        5,
        "the first dead job is older than dead_max_age_s on the server's clock",
    )
    still_listed = [job.id for job in client.dead_jobs(QUEUE)]

    new_id = client.enqueue(QUEUE, Doomed(label="new"))
    _drain(client, Recorder(), settings)

    assert still_listed == [old_id]
    assert [job.id for job in client.dead_jobs(QUEUE)] == [new_id]
    assert client.job(QUEUE, old_id) == {}


@pytest.mark.parametrize("job_ids", ["abc", b"abc", 7, [1, 2]])
def test_dead_api_rejects_non_list_ids(client: Client, job_ids: object) -> None:
    with pytest.raises(ConfigurationError, match="job"):
        client.retry_dead(QUEUE, job_ids)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="job"):
        client.delete_dead(QUEUE, job_ids)  # type: ignore[arg-type]


@pytest.mark.parametrize(("offset", "limit"), [(-1, 10), (0, -1), (0, 2.5)])
def test_dead_jobs_rejects_bad_range(client: Client, offset: object, limit: object) -> None:
    with pytest.raises(ConfigurationError, match="must be an integer of at least 0"):
        client.dead_jobs(QUEUE, offset=offset, limit=limit)  # type: ignore[arg-type]
