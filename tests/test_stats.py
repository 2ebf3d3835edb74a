"""Inspection: queue counters and counts, known queues and live Runner processes."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator

import pytest

from oxanus_sync import Client, Context, Queue, QueueConfig, Runner, RunnerSettings, Worker
from tests.helpers import Recorder, build_config, started, wait_until

QUEUE = Queue("default", QueueConfig(concurrency=2))
FAST_SETTINGS = RunnerSettings(shutdown_timeout_s=5, block_timeout_s=0.5)


class Succeed(Worker):
    def process(self, ctx: Context[Recorder]) -> None:
        ctx.shared.add("succeeded")


class FailOnce(Worker):
    def retry_delay(self, attempt: int) -> float | None:
        return 0

    def process(self, ctx: Context[Recorder]) -> None:
        ctx.shared.add(f"attempt {ctx.meta.attempt}")
        if ctx.meta.attempt == 1:
            raise RuntimeError("first attempt fails")


class Die(Worker):
    max_retries = 0

    def process(self, ctx: Context[Recorder]) -> None:
        raise RuntimeError("no retries")


class Block(Worker):
    def process(self, ctx: Context[threading.Event]) -> None:
        if not ctx.shared.wait(timeout=20):
            raise TimeoutError("the test never released this job")


@pytest.fixture
def client(redis_url: str, namespace: str) -> Iterator[Client]:
    client = Client.from_url(redis_url, namespace=namespace)
    yield client
    client.close()


def test_counters_after_processing(client: Client) -> None:
    client.enqueue_many(QUEUE, [Succeed(), Succeed(), Succeed(), FailOnce(), Die()])
    config = build_config(client, [QUEUE], [Succeed, FailOnce, Die])
    Runner(config, context=Recorder()).drain(timeout_s=20, include_scheduled=True)

    [counts] = client.stats([QUEUE])

    assert counts.queue == QUEUE.name
    assert counts.processed == 6
    assert counts.succeeded == 4
    assert counts.failed == 2
    assert counts.retried == 1
    assert counts.dead_total == 1
    assert counts.dead == 1
    assert counts.ready == 0
    assert counts.scheduled == 0
    assert counts.retry == 0
    assert counts.running == 0


def test_counters_match_runner_stats(client: Client) -> None:
    client.enqueue_many(QUEUE, [Succeed(), FailOnce(), Die(), Die()])
    config = build_config(client, [QUEUE], [Succeed, FailOnce, Die])
    stats = Runner(config, context=Recorder()).drain(timeout_s=20, include_scheduled=True)

    [counts] = client.stats([QUEUE])

    assert counts.processed == stats.processed
    assert counts.succeeded == stats.succeeded
    assert counts.failed == stats.failed
    assert counts.retried == stats.retried
    assert counts.dead_total == stats.dead


def test_processed_is_succeeded_plus_failed(client: Client) -> None:
    # The scripts count outcomes only, so a processed field left by an older release is ignored.
    stats_key = client.storage.keys(QUEUE.name).stats
    client.redis.hset(stats_key, mapping={"processed": 99, "succeeded": 2, "failed": 1})

    [counts] = client.stats([QUEUE])

    assert counts.processed == 3
    assert counts.succeeded == 2
    assert counts.failed == 1


def test_counters_add_up_across_runners(client: Client) -> None:
    config = build_config(client, [QUEUE], [Succeed])

    client.enqueue_many(QUEUE, [Succeed(), Succeed()])
    Runner(config, context=Recorder()).drain(timeout_s=10)
    client.enqueue(QUEUE, Succeed())
    Runner(config, context=Recorder()).drain(timeout_s=10)

    [counts] = client.stats([QUEUE])
    assert counts.processed == 3
    assert counts.succeeded == 3


def test_backlog_ready_and_latency(client: Client) -> None:
    client.enqueue_many(QUEUE, [Succeed() for _ in range(3)])

    wait_until(
        lambda: client.stats([QUEUE])[0].latency_ms >= 50,
        5,
        "the oldest ready job has waited at least 50 ms",
    )

    [counts] = client.stats([QUEUE])
    assert counts.ready == 3
    assert counts.processed == 0


def test_empty_queue_latency_zero(client: Client) -> None:
    [counts] = client.stats([QUEUE])

    assert counts.ready == 0
    assert counts.latency_ms == 0
    assert counts.processed == 0


def test_running_counts_claimed_jobs(client: Client) -> None:
    release = threading.Event()
    config = build_config(client, [QUEUE], [Block], FAST_SETTINGS)

    client.enqueue(QUEUE, Block())
    with started(Runner(config, context=release)):
        try:
            wait_until(
                lambda: client.stats([QUEUE])[0].running == 1, 10, "the job is counted as running"
            )
            assert client.stats([QUEUE])[0].ready == 0
        finally:
            release.set()
        wait_until(lambda: client.stats([QUEUE])[0].succeeded == 1, 10, "the job finished")

    [counts] = client.stats([QUEUE])
    assert counts.running == 0


def test_queues_lists_enqueued_queue(client: Client) -> None:
    before = client.queues()

    client.enqueue(QUEUE, Succeed())
    client.enqueue_in("later", Succeed(), 60)

    assert before == []
    assert client.queues() == ["default", "later"]


def test_queues_lists_served_queue(client: Client) -> None:
    served = Queue("served")

    Runner(build_config(client, [served], [Succeed]), context=Recorder()).drain(timeout_s=10)

    assert client.queues() == ["served"]


def test_stats_default_covers_known_queues(client: Client) -> None:
    client.enqueue("first", Succeed())
    client.enqueue_many("second", [Succeed(), Succeed()])

    counts = {entry.queue: entry.ready for entry in client.stats()}

    assert counts == {"first": 1, "second": 2}


def test_processes_show_live_runner(client: Client) -> None:
    other = Queue("other", QueueConfig(concurrency=3))
    runner = Runner(build_config(client, [QUEUE, other], [Succeed], FAST_SETTINGS))

    with started(runner):
        records = client.processes()

    [record] = records
    assert record.id == runner.process_id
    assert record.host == socket.gethostname()
    assert record.pid == os.getpid()
    assert sorted(record.queues) == ["default", "other"]
    assert record.concurrency == 5
    assert record.busy == 0
    assert record.last_beat_ms >= record.started_at_ms


def test_processes_forget_stopped_runner(client: Client) -> None:
    runner = Runner(build_config(client, [QUEUE], [Succeed], FAST_SETTINGS))

    with started(runner):
        listed_while_running = [record.id for record in client.processes()]

    assert listed_while_running == [runner.process_id]
    assert client.processes() == []


def test_processes_empty_without_runner(client: Client) -> None:
    assert client.processes() == []
