"""Resumable jobs: progress saved with ctx.save_state is read by the next attempt."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from oxanus_sync import Client, Context, Queue, QueueConfig, RetryPolicy, Runner, Worker
from oxanus_sync.errors import SerializationError
from oxanus_sync.storage.keys import QueueKeys
from tests.helpers import Recorder, build_config

QUEUE = Queue("resumable", QueueConfig(retry=RetryPolicy(max_retries=5, base_delay_s=0)))


class Countdown(Worker, name="tests.resumable.Countdown"):
    """Counts to `total`, failing after every `step` items, resuming from the saved count."""

    total: int
    step: int

    def process(self, ctx: Context[Recorder]) -> None:
        done = ctx.state or 0
        ctx.shared.add(("resume", ctx.attempt, done))
        for item in range(done, self.total):
            if item > done and (item - done) % self.step == 0:
                raise RuntimeError(f"stopped at {item}")
            ctx.save_state(item + 1)


class BadState(Worker, name="tests.resumable.BadState"):
    def process(self, ctx: Context[Recorder]) -> None:
        try:
            ctx.save_state(object())
        except SerializationError as error:
            ctx.shared.add(str(error))


class RichState(Worker, name="tests.resumable.RichState"):
    def process(self, ctx: Context[Recorder]) -> None:
        ctx.shared.add(ctx.state)
        if ctx.state is None:
            ctx.save_state({"seen": (1, 2), "raw": b"\x00\xff"})
            raise RuntimeError("fail once")


@pytest.fixture
def client(redis_url: str, namespace: str) -> Iterator[Client]:
    client = Client.from_url(redis_url, namespace=namespace)
    yield client
    client.close()


def drain(client: Client, recorder: Recorder, job_type: type[Worker]) -> Any:
    config = build_config(client, [QUEUE], [job_type])
    return Runner(config, context=recorder).drain(timeout_s=20, include_scheduled=True)


def test_retry_resumes_from_saved_state(client: Client) -> None:
    recorder = Recorder()
    client.enqueue(QUEUE, Countdown(total=10, step=4))

    stats = drain(client, recorder, Countdown)

    assert recorder.events() == [("resume", 1, 0), ("resume", 2, 4), ("resume", 3, 8)]
    assert stats.succeeded == 1
    assert stats.retried == 2


def test_first_attempt_state_is_none(client: Client) -> None:
    recorder = Recorder()
    client.enqueue(QUEUE, RichState())

    drain(client, recorder, RichState)

    assert recorder.events() == [None, {"seen": (1, 2), "raw": b"\x00\xff"}]


def test_unstorable_state_raises(client: Client) -> None:
    recorder = Recorder()
    client.enqueue(QUEUE, BadState())

    drain(client, recorder, BadState)

    [message] = recorder.events()
    assert "cannot be stored" in message


def test_state_not_saved_without_ownership(client: Client, namespace: str) -> None:
    job_id = client.enqueue(QUEUE, Countdown(total=1, step=1))

    saved = client.storage.save_state(QUEUE.name, "not-the-owner", job_id, b"1")

    assert not saved
    assert client.job(QUEUE, job_id).get("state") is None


def test_reclaimed_job_resumes_from_state(client: Client, namespace: str) -> None:
    recorder = Recorder()
    keys = QueueKeys.build(namespace, QUEUE.name)
    job_id = client.enqueue(QUEUE, Countdown(total=3, step=10))
    # The job was running on a process that died after saving progress 2.
    client.redis.lmove(keys.ready, keys.processing("dead"), "RIGHT", "LEFT")
    client.redis.hset(keys.job(job_id), "state", "2")
    client.redis.zadd(keys.leases, {"dead": 0})

    drain(client, recorder, Countdown)

    assert recorder.events() == [("resume", 1, 2)]
