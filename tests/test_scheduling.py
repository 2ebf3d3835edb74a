"""Delayed jobs: enqueue_in, enqueue_at and enqueue_many with a delay."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from oxanus_sync import Client, Context, EnqueueError, Queue, QueueConfig, Runner, Worker
from oxanus_sync.storage.keys import QueueKeys
from tests.helpers import Recorder, build_config

QUEUE = Queue("default", QueueConfig(concurrency=2))

# The server's clock sets due times and this host's clock stamps job starts; both run on this
# machine, so a start may precede a due time only by rounding to milliseconds.
CLOCK_TOLERANCE_S = 0.05


class Stamp(Worker):
    label: str

    def process(self, ctx: Context[Recorder]) -> None:
        ctx.shared.add((self.label, time.time(), ctx.meta))


@pytest.fixture
def client(redis_url: str, namespace: str) -> Iterator[Client]:
    client = Client.from_url(redis_url, namespace=namespace)
    yield client
    client.close()


def _drain_all(client: Client, recorder: Recorder) -> Any:
    runner = Runner(build_config(client, [QUEUE], [Stamp]), context=recorder)
    return runner.drain(timeout_s=15, include_scheduled=True)


def test_enqueue_in_waits_for_delay(client: Client) -> None:
    recorder = Recorder()

    enqueued_at = time.time()
    client.enqueue_in(QUEUE, Stamp(label="later"), 0.5)
    _drain_all(client, recorder)

    [(_, started_at, _)] = recorder.events()
    assert started_at >= enqueued_at + 0.5 - CLOCK_TOLERANCE_S


def test_enqueue_in_timedelta(client: Client) -> None:
    recorder = Recorder()

    enqueued_at = time.time()
    client.enqueue_in(QUEUE, Stamp(label="later"), timedelta(milliseconds=300))
    _drain_all(client, recorder)

    [(_, started_at, _)] = recorder.events()
    assert started_at >= enqueued_at + 0.3 - CLOCK_TOLERANCE_S


def test_enqueue_in_sets_scheduled_at(client: Client) -> None:
    recorder = Recorder()

    before = datetime.now(UTC)
    client.enqueue_in(QUEUE, Stamp(label="later"), 0.2)
    _drain_all(client, recorder)

    [(_, _, meta)] = recorder.events()
    assert meta.scheduled_at is not None
    assert meta.scheduled_at >= before + timedelta(seconds=0.2 - CLOCK_TOLERANCE_S)
    assert meta.enqueued_at is not None
    assert meta.scheduled_at - meta.enqueued_at == timedelta(milliseconds=200)


def test_enqueue_at_aware_future(client: Client) -> None:
    recorder = Recorder()

    run_at = datetime.now(UTC) + timedelta(seconds=0.5)
    client.enqueue_at(QUEUE, Stamp(label="at"), run_at)
    _drain_all(client, recorder)

    [(_, started_at, _)] = recorder.events()
    assert started_at >= run_at.timestamp() - CLOCK_TOLERANCE_S


def test_enqueue_at_other_time_zone(client: Client) -> None:
    recorder = Recorder()
    plus_five = timezone(timedelta(hours=5))

    run_at = datetime.now(plus_five) + timedelta(seconds=0.4)
    client.enqueue_at(QUEUE, Stamp(label="at"), run_at)
    _drain_all(client, recorder)

    [(_, started_at, _)] = recorder.events()
    assert started_at >= run_at.timestamp() - CLOCK_TOLERANCE_S


def test_enqueue_at_past_runs_now(client: Client) -> None:
    recorder = Recorder()

    client.enqueue_at(QUEUE, Stamp(label="past"), datetime(2000, 1, 1, tzinfo=UTC))
    [counts] = client.stats([QUEUE])
    stats = Runner(build_config(client, [QUEUE], [Stamp]), context=recorder).drain(timeout_s=10)

    assert counts.ready == 1
    assert counts.scheduled == 0
    assert stats.succeeded == 1
    assert [label for label, _, _ in recorder.events()] == ["past"]


def test_enqueue_in_zero_runs_now(client: Client) -> None:
    client.enqueue_in(QUEUE, Stamp(label="now"), 0)

    [counts] = client.stats([QUEUE])
    assert counts.ready == 1
    assert counts.scheduled == 0


def test_naive_datetime_raises(client: Client) -> None:
    naive = datetime.now() + timedelta(minutes=5)

    with pytest.raises(EnqueueError) as raised:
        client.enqueue_at(QUEUE, Stamp(label="naive"), naive)

    message = str(raised.value)
    assert "naive" in message
    assert "timezone" in message
    assert "aware" in message
    [counts] = client.stats([QUEUE])
    assert counts.scheduled == 0


def test_enqueue_at_non_datetime_raises(client: Client) -> None:
    with pytest.raises(EnqueueError):
        client.enqueue_at(QUEUE, Stamp(label="number"), time.time() + 5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "delay",
    [
        pytest.param(-1, id="negative-int"),
        pytest.param(-0.001, id="negative-float"),
        pytest.param(timedelta(seconds=-1), id="negative-timedelta"),
        pytest.param(math.nan, id="nan"),
        pytest.param("5", id="string"),
        pytest.param(True, id="bool"),
        pytest.param(math.inf, id="infinity"),
    ],
)
def test_invalid_delay_raises(client: Client, delay: Any) -> None:
    with pytest.raises(EnqueueError) as raised:
        client.enqueue_in(QUEUE, Stamp(label="bad"), delay)

    assert "invalid delay" in str(raised.value)
    [counts] = client.stats([QUEUE])
    assert counts.scheduled == 0
    assert counts.ready == 0


def test_enqueue_many_negative_delay_raises(client: Client) -> None:
    with pytest.raises(EnqueueError):
        client.enqueue_many(QUEUE, [Stamp(label="bad")], delay=-5)


def test_enqueue_many_with_delay(client: Client) -> None:
    recorder = Recorder()

    enqueued_at = time.time()
    client.enqueue_many(QUEUE, [Stamp(label=str(i)) for i in range(5)], delay=0.3)
    [counts] = client.stats([QUEUE])
    _drain_all(client, recorder)

    assert counts.scheduled == 5
    assert len(recorder) == 5
    for _, started_at, _ in recorder.events():
        assert started_at >= enqueued_at + 0.3 - CLOCK_TOLERANCE_S


def test_stats_show_scheduled_job(client: Client) -> None:
    job_id = client.enqueue_in(QUEUE, Stamp(label="tomorrow"), timedelta(days=1))

    [counts] = client.stats([QUEUE])
    assert counts.scheduled == 1
    assert counts.ready == 0
    due_ms = client.redis.zscore(QueueKeys.build(client.namespace, QUEUE.name).scheduled, job_id)
    assert due_ms is not None
    assert due_ms >= client.storage.server_time_ms() + 86_000_000


def test_drain_leaves_future_jobs(client: Client) -> None:
    recorder = Recorder()

    client.enqueue_in(QUEUE, Stamp(label="next hour"), 3600)
    client.enqueue(QUEUE, Stamp(label="now"))
    stats = Runner(build_config(client, [QUEUE], [Stamp]), context=recorder).drain(timeout_s=10)

    assert stats.succeeded == 1
    assert [label for label, _, _ in recorder.events()] == ["now"]
    [counts] = client.stats([QUEUE])
    assert counts.scheduled == 1


def test_enqueue_at_far_future_raises(client: Client) -> None:
    far = datetime(9999, 1, 1, tzinfo=UTC)

    with pytest.raises(EnqueueError, match="more than 100 years ahead"):
        client.enqueue_at(QUEUE, Stamp(label="far"), far)
