"""Running jobs: the context a job receives, concurrency limits, queue isolation, and payloads
that a Runner cannot run."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from oxanus_sync import (
    Client,
    Context,
    OxanusError,
    Queue,
    QueueConfig,
    RetryPolicy,
    Runner,
    RunnerSettings,
    RunnerStats,
    Worker,
)
from oxanus_sync.storage.keys import QueueKeys
from tests.helpers import Recorder, build_config, started, wait_until

QUEUE = Queue("default", QueueConfig(concurrency=4))
FAST_SETTINGS = RunnerSettings(shutdown_timeout_s=5, block_timeout_s=0.5)


class Record(Worker):
    label: str

    def process(self, ctx: Context[Recorder]) -> None:
        ctx.shared.add(self.label)


class InspectContext(Worker):
    def process(self, ctx: Context[Recorder]) -> None:
        ctx.shared.add(ctx)


class Unregistered(Worker):
    def process(self, ctx: Context[Any]) -> None:
        raise AssertionError("a Runner that did not register this type must not run it")


class Validated(Worker):
    max_retries = 0
    count: int

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError(f"count must be 0 or more, got {self.count}")

    def process(self, ctx: Context[Recorder]) -> None:
        ctx.shared.add(self.count)


class Gauge:
    """Counts the jobs of each queue that run at once, and the maximum reached."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.running: dict[str, int] = defaultdict(int)
        self.max_running: dict[str, int] = defaultdict(int)
        self.finished: dict[str, int] = defaultdict(int)
        self.release = threading.Event()

    def enter(self, queue: str) -> None:
        with self._lock:
            self.running[queue] += 1
            self.max_running[queue] = max(self.max_running[queue], self.running[queue])

    def leave(self, queue: str) -> None:
        with self._lock:
            self.running[queue] -= 1
            self.finished[queue] += 1

    def running_count(self, queue: str) -> int:
        with self._lock:
            return self.running[queue]

    def finished_count(self, queue: str) -> int:
        with self._lock:
            return self.finished[queue]


class Sleep(Worker):
    seconds: float

    def process(self, ctx: Context[Gauge]) -> None:
        ctx.shared.enter(ctx.queue)
        try:
            time.sleep(self.seconds)
        finally:
            ctx.shared.leave(ctx.queue)


class WaitForRelease(Worker):
    def process(self, ctx: Context[Gauge]) -> None:
        ctx.shared.enter(ctx.queue)
        try:
            if not ctx.shared.release.wait(timeout=20):
                raise TimeoutError("the test never released this job")
        finally:
            ctx.shared.leave(ctx.queue)


@pytest.fixture
def client(redis_url: str, namespace: str) -> Iterator[Client]:
    client = Client.from_url(redis_url, namespace=namespace)
    yield client
    client.close()


def _put_raw_job(client: Client, queue: str, job_id: str, payload: bytes) -> None:
    """Store a job hash with `payload` as it is and push its id to the ready list."""
    keys = QueueKeys.build(client.namespace, queue)
    now_ms = client.storage.server_time_ms()
    client.redis.hset(
        keys.job(job_id),
        mapping={"payload": payload, "enqueued_at": now_ms, "ready_at": now_ms},
    )
    client.redis.lpush(keys.ready, job_id)


# Context


def test_shared_is_runner_context(client: Client) -> None:
    recorder = Recorder()

    client.enqueue(QUEUE, InspectContext())
    Runner(build_config(client, [QUEUE], [InspectContext]), context=recorder).drain(timeout_s=10)

    [ctx] = recorder.events()
    assert ctx.shared is recorder


def test_meta_describes_job(client: Client) -> None:
    recorder = Recorder()

    job_id = client.enqueue(QUEUE, InspectContext())
    Runner(build_config(client, [QUEUE], [InspectContext]), context=recorder).drain(timeout_s=10)

    [ctx] = recorder.events()
    meta = ctx.meta
    assert meta.id == job_id
    assert meta.queue == QUEUE.name
    assert meta.job_type == InspectContext.job_name
    assert meta.attempt == 1
    assert meta.reclaims == 0
    assert meta.scheduled_at is None
    assert ctx.job_id == job_id
    assert ctx.queue == QUEUE.name
    assert ctx.attempt == 1


def test_meta_enqueued_at_is_utc_now(client: Client) -> None:
    recorder = Recorder()
    # The server's clock stamps enqueued_at; allow for a small offset from this host's clock.
    tolerance = timedelta(seconds=1)
    before = datetime.now(UTC)

    client.enqueue(QUEUE, InspectContext())
    after = datetime.now(UTC)
    Runner(build_config(client, [QUEUE], [InspectContext]), context=recorder).drain(timeout_s=10)

    [ctx] = recorder.events()
    enqueued_at = ctx.meta.enqueued_at
    assert enqueued_at is not None
    assert enqueued_at.tzinfo is not None
    assert enqueued_at.utcoffset() == timedelta(0)
    assert enqueued_at >= before - tolerance
    assert enqueued_at <= after + tolerance


# Concurrency


def test_concurrency_limit_never_exceeded(client: Client) -> None:
    queue = Queue("limited", QueueConfig(concurrency=3))
    gauge = Gauge()

    client.enqueue_many(queue, [Sleep(seconds=0.05) for _ in range(30)])
    stats = Runner(build_config(client, [queue], [Sleep]), context=gauge).drain(timeout_s=30)

    assert stats.succeeded == 30
    assert gauge.max_running[queue.name] == 3


def test_queues_have_own_concurrency(client: Client) -> None:
    narrow = Queue("narrow", QueueConfig(concurrency=2))
    wide = Queue("wide", QueueConfig(concurrency=5))
    gauge = Gauge()

    client.enqueue_many(narrow, [Sleep(seconds=0.05) for _ in range(12)])
    client.enqueue_many(wide, [Sleep(seconds=0.05) for _ in range(25)])
    config = build_config(client, [narrow, wide], [Sleep])
    stats = Runner(config, context=gauge).drain(timeout_s=30)

    assert stats.succeeded == 37
    assert gauge.max_running[narrow.name] == 2
    assert gauge.max_running[wide.name] == 5


def test_blocked_queue_does_not_stall_other(client: Client) -> None:
    blocked = Queue("blocked", QueueConfig(concurrency=1))
    other = Queue("other", QueueConfig(concurrency=1))
    gauge = Gauge()
    config = build_config(client, [blocked, other], [Sleep, WaitForRelease], FAST_SETTINGS)

    client.enqueue(blocked, WaitForRelease())
    client.enqueue_many(blocked, [Sleep(seconds=0) for _ in range(3)])

    with started(Runner(config, context=gauge)):
        try:
            wait_until(
                lambda: gauge.running_count(blocked.name) == 1,
                10,
                "the first job of the blocked queue is running",
            )
            client.enqueue_many(other, [Sleep(seconds=0) for _ in range(5)])
            wait_until(
                lambda: gauge.finished_count(other.name) == 5,
                10,
                "the 5 jobs of the other queue finished",
            )
            assert gauge.finished_count(blocked.name) == 0
            assert gauge.running_count(blocked.name) == 1

            gauge.release.set()
            wait_until(
                lambda: gauge.finished_count(blocked.name) == 4,
                10,
                "the 4 jobs of the blocked queue finished",
            )
        finally:
            gauge.release.set()


# Threads


def test_runner_in_non_main_thread(client: Client) -> None:
    recorder = Recorder()
    runner = Runner(build_config(client, [QUEUE], [Record], FAST_SETTINGS), context=recorder)
    handler_before = signal.getsignal(signal.SIGTERM)
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["stats"] = runner.run_forever()
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=run, name="runner-under-test")
    thread.start()
    try:
        client.enqueue(QUEUE, Record(label="from a thread"))
        wait_until(lambda: len(recorder) == 1, 10, "the job ran")
        handler_while_running = signal.getsignal(signal.SIGTERM)
    finally:
        runner.request_stop()
        thread.join(timeout=20)

    assert not thread.is_alive()
    assert "error" not in outcome
    assert recorder.events() == ["from a thread"]
    assert handler_while_running is handler_before
    stats: RunnerStats = outcome["stats"]
    assert stats.succeeded == 1


def test_runner_start_stop_in_background(client: Client) -> None:
    recorder = Recorder()
    runner = Runner(build_config(client, [QUEUE], [Record], FAST_SETTINGS), context=recorder)

    with started(runner):
        client.enqueue_many(QUEUE, [Record(label=str(i)) for i in range(10)])
        wait_until(lambda: len(recorder) == 10, 10, "the 10 jobs ran")

    assert sorted(recorder.events(), key=int) == [str(i) for i in range(10)]


def test_runner_cannot_start_twice(client: Client) -> None:
    runner = Runner(build_config(client, [QUEUE], [Record], FAST_SETTINGS))

    with started(runner), pytest.raises(OxanusError, match="already started"):
        runner.start()


# Jobs that cannot run


def test_unknown_job_type_retried_then_dead(client: Client) -> None:
    # The queue allows no retry: unknown types follow RunnerSettings.unknown_type_retry.
    queue = Queue("mixed", QueueConfig(retry=RetryPolicy(max_retries=0)))
    settings = RunnerSettings(unknown_type_retry=RetryPolicy(max_retries=2, base_delay_s=0))
    config = build_config(client, [queue], [Record], settings)

    job_id = client.enqueue(queue, Unregistered())
    stats = Runner(config, context=Recorder()).drain(timeout_s=20, include_scheduled=True)

    assert stats.retried == 2
    assert stats.dead == 1
    [dead] = client.dead_jobs(queue)
    assert dead.id == job_id
    assert dead.attempt == 3
    assert dead.error is not None
    assert dead.error["type"] == "UnknownJobTypeError"
    assert "unknown job type" in dead.error["message"]
    assert Unregistered.job_name in dead.error["message"]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        pytest.param({"attempt": "many"}, "field attempt is b'many'", id="attempt"),
        pytest.param({"reclaims": "x"}, "field reclaims is b'x'", id="reclaims"),
        pytest.param({"enqueued_at": "soon"}, "field enqueued_at", id="enqueued-at"),
        pytest.param({"payload": None}, "no payload field", id="no-payload"),
    ],
)
def test_damaged_job_hash_goes_dead(
    client: Client, fields: dict[str, str | None], reason: str
) -> None:
    queue = Queue("raw", QueueConfig(concurrency=2))
    recorder = Recorder()
    config = build_config(client, [queue], [Record])
    keys = QueueKeys.build(client.namespace, queue.name)

    client.enqueue_many(queue, [Record(label=f"before-{i}") for i in range(3)])
    damaged = client.enqueue(queue, Record(label="damaged"))
    client.enqueue_many(queue, [Record(label=f"after-{i}") for i in range(3)])
    for name, value in fields.items():
        if value is None:
            client.redis.hdel(keys.job(damaged), name)
        else:
            client.redis.hset(keys.job(damaged), name, value)
    stats = Runner(config, context=recorder).drain(timeout_s=10, include_scheduled=True)

    assert sorted(recorder.events()) == [f"after-{i}" for i in range(3)] + [
        f"before-{i}" for i in range(3)
    ]
    assert stats.dead == 1
    [dead] = client.dead_jobs(queue)
    assert dead.id == damaged
    assert dead.error is not None
    assert dead.error["type"] == "CorruptJobError"
    assert reason in dead.error["message"]
    assert client.stats([queue])[0].running == 0


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        pytest.param(b"{not json", "not valid JSON", id="invalid-json"),
        pytest.param(b"\xff\xfe\x00", "not valid JSON", id="invalid-utf8"),
        pytest.param(b"[1, 2]", "not a job envelope", id="not-an-object"),
        pytest.param(b'{"v": 1, "type": 5, "args": {}}', "not a job envelope", id="bad-type"),
        pytest.param(b'{"v": 99, "type": "x", "args": {}}', "version 99", id="new-version"),
    ],
)
def test_undecodable_payload_goes_dead(client: Client, payload: bytes, reason: str) -> None:
    queue = Queue("raw", QueueConfig(concurrency=1))
    recorder = Recorder()
    config = build_config(client, [queue], [Record])

    client.enqueue(queue, Record(label="before"))
    _put_raw_job(client, queue.name, "broken", payload)
    client.enqueue(queue, Record(label="after"))
    stats = Runner(config, context=recorder).drain(timeout_s=10, include_scheduled=True)

    assert recorder.events() == ["before", "after"]
    assert stats.dead == 1
    assert stats.retried == 0
    [dead] = client.dead_jobs(queue)
    assert dead.id == "broken"
    assert dead.payload == payload
    assert dead.error is not None
    assert dead.error["type"] == "SerializationError"
    assert reason in dead.error["message"]


def test_mismatched_args_go_dead(client: Client) -> None:
    queue = Queue("raw", QueueConfig(concurrency=1))
    recorder = Recorder()
    config = build_config(client, [queue], [Record])
    payload = json.dumps({"v": 1, "type": Record.job_name, "args": {"title": "renamed field"}})

    _put_raw_job(client, queue.name, "stale", payload.encode())
    client.enqueue(queue, Record(label="after"))
    stats = Runner(config, context=recorder).drain(timeout_s=10, include_scheduled=True)

    assert recorder.events() == ["after"]
    assert stats.dead == 1
    [dead] = client.dead_jobs(queue)
    assert dead.id == "stale"
    assert dead.error is not None
    assert dead.error["type"] == "SerializationError"
    assert "'title'" in dead.error["message"]
    assert "'label'" in dead.error["message"]
    assert Record.job_name in dead.error["message"]


def test_deleted_job_hash_is_skipped(client: Client) -> None:
    queue = Queue("raw", QueueConfig(concurrency=1))
    recorder = Recorder()
    keys = QueueKeys.build(client.namespace, queue.name)

    orphan_id = client.enqueue(queue, Record(label="deleted"))
    client.redis.delete(keys.job(orphan_id))
    client.enqueue(queue, Record(label="kept"))
    stats = Runner(build_config(client, [queue], [Record]), context=recorder).drain(timeout_s=10)

    assert recorder.events() == ["kept"]
    assert stats.processed == 1
    assert client.redis.llen(keys.ready) == 0


def test_constructor_error_goes_dead(client: Client) -> None:
    queue = Queue("raw", QueueConfig(concurrency=1))
    recorder = Recorder()
    config = build_config(client, [queue], [Validated])
    payload = json.dumps({"v": 1, "type": Validated.job_name, "args": {"count": -1}})

    _put_raw_job(client, queue.name, "invalid", payload.encode())
    client.enqueue(queue, Validated(count=2))
    Runner(config, context=recorder).drain(timeout_s=3)

    assert recorder.events() == [2]
    [dead] = client.dead_jobs(queue)
    assert dead.id == "invalid"
    assert dead.error is not None
    assert "count must be 0 or more" in dead.error["message"]
