"""The blocking claim of an idle queue: BLMOVE and the read of the moved job in one write."""

from __future__ import annotations

import pytest
import redis

from oxanus_sync.storage.store import Storage
from tests.helpers import enqueue_ids, leased_storage

QUEUE = "idle"
PROCESS_ID = "process-1"


@pytest.fixture
def storage(redis_client: redis.Redis, namespace: str) -> Storage:
    return leased_storage(redis_client, namespace, [QUEUE], PROCESS_ID)


def _enqueue(storage: Storage, *ids: str) -> None:
    enqueue_ids(storage, QUEUE, *ids)


def test_claims_the_moved_job_beside_running_ones(
    storage: Storage, redis_client: redis.Redis
) -> None:
    _enqueue(storage, "running-1", "running-2")
    assert len(storage.claim(QUEUE, PROCESS_ID, 2).jobs) == 2
    _enqueue(storage, "waiting")

    job = storage.blocking_claim(redis_client, QUEUE, PROCESS_ID, 1.0)

    assert job is not None
    assert job.id == "waiting"
    assert job.payload == b'{"job": "waiting"}'
    processing = storage.keys(QUEUE).processing(PROCESS_ID)
    assert sorted(redis_client.lrange(processing, 0, -1)) == [
        b"running-1",
        b"running-2",
        b"waiting",
    ]


def test_reads_fields_after_script_flush(storage: Storage, redis_client: redis.Redis) -> None:
    _enqueue(storage, "after-flush")
    redis_client.script_flush()

    job = storage.blocking_claim(redis_client, QUEUE, PROCESS_ID, 1.0)

    assert job is not None
    assert job.payload == b'{"job": "after-flush"}'
    # The script is loaded again, so the next blocking claim takes one round trip.
    assert redis_client.script_exists(storage._script["fetched"].sha) == [True]


def test_timeout_claims_nothing(storage: Storage, redis_client: redis.Redis) -> None:
    _enqueue(storage, "running")
    storage.claim(QUEUE, PROCESS_ID, 1)

    job = storage.blocking_claim(redis_client, QUEUE, PROCESS_ID, 0.05)

    assert job is None
    processing = storage.keys(QUEUE).processing(PROCESS_ID)
    assert redis_client.lrange(processing, 0, -1) == [b"running"]
