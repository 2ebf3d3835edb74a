"""Payload safety of `oxanus_sync.rq`: refused callables, allow-lists and signed payloads."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis

from oxanus_sync import Client
from oxanus_sync.rq import Queue, Retry
from oxanus_sync.rq.job import JobStatus
from oxanus_sync.rq.payload import RQCall
from oxanus_sync.storage.keys import QueueKeys
from tests import rq_jobs
from tests.rq_helpers import burst

KEY = "k" * 32


@pytest.fixture
def client(redis_url: str, namespace: str) -> Iterator[Client]:
    client = Client(redis.Redis.from_url(redis_url), namespace=namespace)
    yield client
    client.close()


def point_payload_at(client: Client, queue: str, job_id: str, path: str) -> None:
    """Rewrite the function path in the payload of job `job_id`, in its job hash and record."""
    keys = QueueKeys.build(client.namespace, queue)
    for key in (keys.job(job_id), f"{client.namespace}:{{{queue}}}:rq:job:{job_id}"):
        envelope = json.loads(client.redis.hget(key, "payload"))
        envelope["args"]["func"] = path
        client.redis.hset(key, "payload", json.dumps(envelope))


@pytest.mark.parametrize("func", [print, eval, "os.system", "builtins.eval", "json.dumps"])
def test_enqueue_refuses_standard_callables(client: Client, func: object) -> None:
    queue = Queue("default", connection=client)

    with pytest.raises(ValueError, match="builtin or in the standard library"):
        queue.enqueue(func, "x")
    assert queue.count == 0


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("os.system", "standard library"),
        ("builtins.eval", "standard library"),
        ("subprocess.run", "standard library"),
        ("tests.rq_jobs.os.system", "standard library"),
        ("tests.rq_jobs.missing", "has no attribute"),
    ],
)
def test_refused_callable_fails_unretried(client: Client, path: str, reason: str) -> None:
    queue = Queue("default", connection=client)
    job = queue.enqueue("tests.rq_jobs.echo", "echo unsafe", retry=Retry(max=3))
    # Enqueue refuses standard-library paths, so write the path into Redis as an attacker could.
    point_payload_at(client, "default", job.id, path)

    burst([queue], client)
    assert job.get_status() == JobStatus.FAILED
    assert reason in (job.exc_info or "")
    if reason == "standard library":
        assert job.retries_left == 3


def test_allowed_modules_restrict(client: Client) -> None:
    queue = Queue("default", connection=client)
    job = queue.enqueue(rq_jobs.add, 1)

    burst([queue], client, allowed_modules=["myapp"])
    assert job.get_status() == JobStatus.FAILED
    assert "outside the allowed prefixes" in (job.exc_info or "")

    allowed = queue.enqueue(rq_jobs.add, 2)
    burst([queue], client, allowed_modules=["tests.rq_jobs"])
    assert allowed.get_status() == JobStatus.FINISHED


def test_signed_payloads_run(redis_url: str, namespace: str) -> None:
    signed = Client(redis.Redis.from_url(redis_url), namespace=namespace, signing_keys=[KEY])
    queue = Queue("default", connection=signed)
    job = queue.enqueue(rq_jobs.add, 1, 2)

    burst([queue], signed)
    assert job.return_value() == 3
    signed.close()


def test_tampered_payload_refused(redis_url: str, namespace: str) -> None:
    signed = Client(redis.Redis.from_url(redis_url), namespace=namespace, signing_keys=[KEY])
    queue = Queue("default", connection=signed)
    job = queue.enqueue(rq_jobs.add, 1, 2)
    job_key = signed.storage.keys("default").job(job.id)
    payload = signed.redis.hget(job_key, "payload")
    assert payload is not None
    altered = payload.replace(b"tests.rq_jobs.add", b"tests.rq_jobs.pid")
    signed.redis.hset(job_key, "payload", altered)

    burst([queue], signed)
    assert job.get_status() == JobStatus.FAILED
    assert "altered or forged" in (job.exc_info or "")
    signed.close()


def test_unsigned_payload_refused(client: Client, redis_url: str, namespace: str) -> None:
    job = Queue("default", connection=client).enqueue(rq_jobs.add, 1)
    signed = Client(redis.Redis.from_url(redis_url), namespace=namespace, signing_keys=[KEY])

    burst([Queue("default", connection=signed)], signed)
    assert job.get_status() == JobStatus.FAILED
    assert "not signed" in (job.exc_info or "")
    signed.close()


def test_native_runner_rejects_rq_job() -> None:
    with pytest.raises(RuntimeError, match=r"oxanus_sync\.rq\.Worker"):
        RQCall(func="tests.rq_jobs.add", call=b"[]").process(None)  # type: ignore[arg-type]
