"""Payload safety of `oxanus_sync.rq`: refused callables, allow-lists and signed payloads."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from oxanus_sync import Client
from oxanus_sync.rq import Queue, Retry
from oxanus_sync.rq.job import JobStatus
from oxanus_sync.rq.payload import RQCall
from tests import rq_jobs
from tests.rq_helpers import burst

KEY = "k" * 32


@pytest.fixture
def client(redis_url: str, namespace: str) -> Iterator[Client]:
    client = Client(redis.Redis.from_url(redis_url), namespace=namespace)
    yield client
    client.close()


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
    job = queue.enqueue(path, "echo unsafe", retry=Retry(max=3))

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
