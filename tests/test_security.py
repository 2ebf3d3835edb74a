"""Payload signing, the payload size limit, and what a payload written by others can do."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from oxanus_sync import (
    Client,
    ConfigurationError,
    Context,
    EnqueueError,
    Queue,
    QueueConfig,
    RetryPolicy,
    Runner,
    RunnerSettings,
    Worker,
)
from oxanus_sync.storage.keys import QueueKeys
from tests.helpers import Recorder, build_config

QUEUE = Queue("secure", QueueConfig(retry=RetryPolicy(max_retries=1, base_delay_s=0)))
OLD_KEY = "old-key-0123456789abcdef"
NEW_KEY = "new-key-0123456789abcdef"


class Note(Worker, name="tests.security.Note"):
    text: str

    def process(self, ctx: Context[Recorder]) -> None:
        ctx.shared.add(self.text)


@pytest.fixture
def connection(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url)
    yield connection
    connection.close()


def make_client(connection: redis.Redis, namespace: str, **options: Any) -> Client:
    return Client(connection, namespace=namespace, **options)


# Unknown job types go dead at once here instead of being retried for minutes.
SETTINGS = RunnerSettings(unknown_type_retry=RetryPolicy(max_retries=0))


def drain(client: Client, recorder: Recorder) -> None:
    Runner(build_config(client, [QUEUE], [Note], SETTINGS), context=recorder).drain(
        timeout_s=10, include_scheduled=True
    )


def test_signed_job_runs(connection: redis.Redis, namespace: str) -> None:
    client = make_client(connection, namespace, signing_keys=[NEW_KEY])
    recorder = Recorder()
    client.enqueue(QUEUE, Note(text="hello"))

    drain(client, recorder)

    assert recorder.events() == ["hello"]


def test_tampered_payload_goes_dead(connection: redis.Redis, namespace: str) -> None:
    client = make_client(connection, namespace, signing_keys=[NEW_KEY])
    recorder = Recorder()
    job_id = client.enqueue(QUEUE, Note(text="pay 10"))
    job_key = QueueKeys.build(namespace, QUEUE.name).job(job_id)
    payload = connection.hget(job_key, "payload")
    assert payload is not None
    connection.hset(job_key, "payload", payload.replace(b"pay 10", b"pay 99"))

    drain(client, recorder)

    [dead] = client.dead_jobs(QUEUE)
    assert recorder.events() == []
    assert dead.error is not None
    assert "altered" in dead.error["message"]


def test_unsigned_payload_goes_dead(connection: redis.Redis, namespace: str) -> None:
    unsigned = make_client(connection, namespace)
    signing = make_client(connection, namespace, signing_keys=[NEW_KEY])
    recorder = Recorder()
    unsigned.enqueue(QUEUE, Note(text="from outside"))

    drain(signing, recorder)

    [dead] = signing.dead_jobs(QUEUE)
    assert recorder.events() == []
    assert dead.error is not None
    assert "not signed" in dead.error["message"]


def test_rotated_key_still_verifies(connection: redis.Redis, namespace: str) -> None:
    before = make_client(connection, namespace, signing_keys=[OLD_KEY])
    after = make_client(connection, namespace, signing_keys=[NEW_KEY, OLD_KEY])
    recorder = Recorder()
    before.enqueue(QUEUE, Note(text="old"))
    after.enqueue(QUEUE, Note(text="new"))

    drain(after, recorder)

    assert sorted(recorder.events()) == ["new", "old"]


def test_removed_key_rejects_payload(connection: redis.Redis, namespace: str) -> None:
    before = make_client(connection, namespace, signing_keys=[OLD_KEY])
    after = make_client(connection, namespace, signing_keys=[NEW_KEY])
    recorder = Recorder()
    before.enqueue(QUEUE, Note(text="old"))

    drain(after, recorder)

    [dead] = after.dead_jobs(QUEUE)
    assert recorder.events() == []
    assert dead.error is not None
    assert "does not have" in dead.error["message"]


@pytest.mark.parametrize("keys", [[], ["short"], "a-single-string-key-not-a-list"])
def test_invalid_signing_keys_raise(connection: redis.Redis, keys: Any) -> None:
    with pytest.raises(ConfigurationError):
        Client(connection, signing_keys=keys)


def test_oversized_payload_rejected(connection: redis.Redis, namespace: str) -> None:
    client = make_client(connection, namespace, max_payload_bytes=1000)

    with pytest.raises(EnqueueError) as raised:
        client.enqueue(QUEUE, Note(text="x" * 2000))

    message = str(raised.value)
    assert "tests.security.Note" in message
    assert "1000" in message
    assert client.stats([QUEUE])[0].ready == 0


def test_payload_at_limit_accepted(connection: redis.Redis, namespace: str) -> None:
    client = make_client(connection, namespace, max_payload_bytes=200)

    client.enqueue(QUEUE, Note(text="x" * 100))

    assert client.stats([QUEUE])[0].ready == 1


def test_payload_cannot_name_stdlib_callable(
    connection: redis.Redis, namespace: str, tmp_path: Path
) -> None:
    client = make_client(connection, namespace)
    marker = tmp_path / "pwned"
    keys = QueueKeys.build(namespace, QUEUE.name)
    payload = {"v": 1, "type": "os.system", "args": {"command": f"touch {marker}"}}
    connection.hset(keys.job("evil"), mapping={"payload": json.dumps(payload), "ready_at": 0})
    connection.lpush(keys.ready, "evil")

    drain(client, Recorder())

    [dead] = client.dead_jobs(QUEUE)
    assert not marker.exists()
    assert dead.error is not None
    assert "unknown job type 'os.system'" in dead.error["message"]
