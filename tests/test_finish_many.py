"""Acks recorded together: one script call per queue and process, its claims shared out."""

from __future__ import annotations

import pytest
import redis

from oxanus_sync.devserver import find_or_start
from oxanus_sync.storage.store import FinishCall, Storage
from tests.helpers import enqueue_ids, leased_storage

QUEUE = "finishing"
PROCESS_ID = "process-1"


@pytest.fixture
def storage(redis_client: redis.Redis, namespace: str) -> Storage:
    return leased_storage(redis_client, namespace, [QUEUE], PROCESS_ID)


def _claim_all(storage: Storage, count: int) -> list[str]:
    return [job.id for job in storage.claim(QUEUE, PROCESS_ID, count).jobs]


def _finish(storage: Storage, calls: list[FinishCall]) -> list[tuple[bool, list[str]]]:
    # Each call's ownership and the ids of the jobs it claimed.
    outcomes = []
    for result in storage.finish_many(calls):
        assert not isinstance(result, Exception)
        owned, jobs = result
        outcomes.append((owned, [job.id for job in jobs]))
    return outcomes


def test_acks_share_claims_in_order(storage: Storage, redis_client: redis.Redis) -> None:
    enqueue_ids(storage, QUEUE, "a", "b", "c")
    assert sorted(_claim_all(storage, 3)) == ["a", "b", "c"]
    enqueue_ids(storage, QUEUE, "next-1", "next-2", "next-3")

    calls = [
        storage.ack_call(QUEUE, PROCESS_ID, "a", 2, unique=None),
        storage.ack_call(QUEUE, PROCESS_ID, "b", 0, unique=None),
        storage.ack_call(QUEUE, PROCESS_ID, "c", 2, unique=None),
    ]
    outcomes = _finish(storage, calls)

    assert outcomes == [(True, ["next-1", "next-2"]), (True, []), (True, ["next-3"])]
    keys = storage.keys(QUEUE)
    assert redis_client.hget(keys.stats, "succeeded") == b"3"
    assert not any(redis_client.exists(keys.job(job_id)) for job_id in "abc")
    processing = redis_client.lrange(keys.processing(PROCESS_ID), 0, -1)
    assert sorted(processing) == [b"next-1", b"next-2", b"next-3"]


def test_lost_ack_claims_nothing(storage: Storage, redis_client: redis.Redis) -> None:
    enqueue_ids(storage, QUEUE, "kept", "lost")
    assert sorted(_claim_all(storage, 2)) == ["kept", "lost"]
    keys = storage.keys(QUEUE)
    # Another process took "lost" back, as a reclaim after an expired lease does.
    redis_client.lrem(keys.processing(PROCESS_ID), 1, "lost")
    enqueue_ids(storage, QUEUE, "next-1", "next-2")

    outcomes = _finish(
        storage,
        [
            storage.ack_call(QUEUE, PROCESS_ID, "lost", 1, unique=None),
            storage.ack_call(QUEUE, PROCESS_ID, "kept", 1, unique=None),
        ],
    )

    assert outcomes == [(False, []), (True, ["next-1"])]
    assert redis_client.hget(keys.stats, "succeeded") == b"1"
    # The lost job's hash belongs to the process that took it back.
    assert redis_client.exists(keys.job("lost")) == 1


def test_acks_of_two_queues_split(storage: Storage, redis_client: redis.Redis) -> None:
    other = "other-queue"
    storage.heartbeat(PROCESS_ID, [QUEUE, other], 30_000, {"started_at": 0})
    enqueue_ids(storage, QUEUE, "here")
    enqueue_ids(storage, other, "there")
    assert _claim_all(storage, 1) == ["here"]
    assert [job.id for job in storage.claim(other, PROCESS_ID, 1).jobs] == ["there"]
    enqueue_ids(storage, QUEUE, "here-next")

    outcomes = _finish(
        storage,
        [
            storage.ack_call(QUEUE, PROCESS_ID, "here", 1, unique=None),
            storage.ack_call(other, PROCESS_ID, "there", 1, unique=None),
        ],
    )

    assert outcomes == [(True, ["here-next"]), (True, [])]
    assert redis_client.hget(storage.keys(other).stats, "succeeded") == b"1"


def test_bad_job_key_spares_other_acks(storage: Storage, redis_client: redis.Redis) -> None:
    enqueue_ids(storage, QUEUE, "first", "damaged", "last")
    assert sorted(_claim_all(storage, 3)) == ["damaged", "first", "last"]
    keys = storage.keys(QUEUE)
    # A hand edit turned the job hash into a string while the job ran.
    redis_client.delete(keys.job("damaged"))
    redis_client.set(keys.job("damaged"), "not a hash")

    outcomes = _finish(
        storage,
        [
            storage.ack_call(QUEUE, PROCESS_ID, job_id, 0, unique=None)
            for job_id in ("first", "damaged", "last")
        ],
    )

    assert outcomes == [(True, []), (True, []), (True, [])]
    assert redis_client.hget(keys.stats, "succeeded") == b"3"
    assert redis_client.llen(keys.processing(PROCESS_ID)) == 0
    assert redis_client.exists(keys.job("damaged")) == 0


def test_acks_free_unique_fields_from_claim(storage: Storage, redis_client: redis.Redis) -> None:
    enqueue_ids(storage, QUEUE, "held", "taken-over", "plain")
    keys = storage.keys(QUEUE)
    redis_client.hset(keys.job("held"), "unique", "report:1")
    redis_client.hset(keys.job("taken-over"), "unique", "report:2")
    # A later job took over the key of "taken-over", as after its hash vanished.
    redis_client.hset(keys.unique, mapping={"report:1": "held", "report:2": "newer"})

    claimed = storage.claim(QUEUE, PROCESS_ID, 3).jobs
    fields = {job.id: job.unique for job in claimed}
    assert fields == {"held": b"report:1", "taken-over": b"report:2", "plain": None}

    outcomes = _finish(
        storage,
        [storage.ack_call(QUEUE, PROCESS_ID, job.id, 0, unique=job.unique) for job in claimed],
    )

    assert outcomes == [(True, []), (True, []), (True, [])]
    assert redis_client.hgetall(keys.unique) == {b"report:2": b"newer"}


def test_ack_makes_seven_redis_calls() -> None:
    # Redis runs the calls of the per-job script for every job, so a test guards their count.
    # INFO commandstats needs a server of its own, because a shared one counts other clients.
    with find_or_start(None) as server:
        client = redis.Redis.from_url(server.url)
        try:
            storage = leased_storage(client, "calls", [QUEUE], PROCESS_ID)
            enqueue_ids(storage, QUEUE, "done", "next")
            [claimed] = storage.claim(QUEUE, PROCESS_ID, 1).jobs
            call = storage.ack_call(QUEUE, PROCESS_ID, claimed.id, 1, unique=claimed.unique)
            client.config_resetstat()

            outcomes = _finish(storage, [call])
            stats = client.info("commandstats")
        finally:
            client.close()

    assert outcomes == [(True, ["next"])]
    scripts = {"cmdstat_evalsha", "cmdstat_eval", "cmdstat_config|resetstat"}
    inner = {name: entry["calls"] for name, entry in stats.items() if name not in scripts}
    assert inner == {
        "cmdstat_lrem": 1,
        "cmdstat_del": 1,
        "cmdstat_hincrby": 1,
        "cmdstat_zscore": 1,
        "cmdstat_time": 1,
        "cmdstat_lmove": 1,
        "cmdstat_hmget": 1,
    }
