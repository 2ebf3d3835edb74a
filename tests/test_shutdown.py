"""Graceful and forced shutdown of a Runner process, driven by real signals."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from oxanus_sync import Client
from oxanus_sync.storage.keys import QueueKeys
from tests.helpers import RunnerProcess, wait_until
from tests.shutdown_app import QUEUE, Sleepy


@pytest.fixture
def start_runner(redis_url: str, namespace: str) -> Iterator[Callable[..., RunnerProcess]]:
    started: list[RunnerProcess] = []

    def start(shutdown_timeout_s: float = 30.0) -> RunnerProcess:
        args = [sys.executable, "tests/shutdown_app.py", redis_url, namespace]
        runner = RunnerProcess([*args, str(shutdown_timeout_s)])
        started.append(runner)
        return runner

    yield start
    for runner in started:
        if runner.process.poll() is None:
            runner.process.kill()
        runner.wait(10)


def events(redis_client: redis.Redis, namespace: str) -> list[str]:
    return [item.decode() for item in redis_client.lrange(f"{namespace}:events", 0, -1)]


@pytest.mark.timeout(30)
def test_sigterm_lets_running_job_finish(
    start_runner: Callable[..., RunnerProcess], redis_client: redis.Redis, namespace: str
) -> None:
    client = Client(redis_client, namespace=namespace)
    client.enqueue(QUEUE, Sleepy(tag="a", seconds=1.0))
    waiting_id = client.enqueue(QUEUE, Sleepy(tag="b", seconds=0.0))
    runner = start_runner()
    wait_until(lambda: "start:a" in events(redis_client, namespace), 10, "job a to start")

    runner.signal(signal.SIGTERM)
    code = runner.wait(10)

    assert code == 0, runner.output()
    assert events(redis_client, namespace) == ["start:a", "end:a"]
    keys = QueueKeys.build(namespace, QUEUE.name)
    assert [job_id.decode() for job_id in redis_client.lrange(keys.ready, 0, -1)] == [waiting_id]
    assert client.stats([QUEUE])[0].succeeded == 1


@pytest.mark.timeout(30)
def test_shutdown_leaves_no_lease_or_claim(
    start_runner: Callable[..., RunnerProcess], redis_client: redis.Redis, namespace: str
) -> None:
    client = Client(redis_client, namespace=namespace)
    client.enqueue(QUEUE, Sleepy(tag="a", seconds=0.5))
    runner = start_runner()
    wait_until(lambda: "start:a" in events(redis_client, namespace), 10, "job a to start")

    runner.signal(signal.SIGINT)
    code = runner.wait(10)

    keys = QueueKeys.build(namespace, QUEUE.name)
    assert code == 0, runner.output()
    assert redis_client.zcard(keys.leases) == 0
    assert list(redis_client.scan_iter(match=keys.processing_prefix + "*")) == []
    assert client.processes() == []


@pytest.mark.timeout(30)
def test_shutdown_timeout_returns_job_once(
    start_runner: Callable[..., RunnerProcess], redis_client: redis.Redis, namespace: str
) -> None:
    client = Client(redis_client, namespace=namespace)
    job_id = client.enqueue(QUEUE, Sleepy(tag="slow", seconds=20.0))
    runner = start_runner(shutdown_timeout_s=0.5)
    wait_until(lambda: "start:slow" in events(redis_client, namespace), 10, "the slow job to start")

    started = time.monotonic()
    runner.signal(signal.SIGTERM)
    code = runner.wait(10)

    keys = QueueKeys.build(namespace, QUEUE.name)
    assert code == 0, runner.output()
    assert time.monotonic() - started < 8
    assert [item.decode() for item in redis_client.lrange(keys.ready, 0, -1)] == [job_id]
    assert redis_client.hget(keys.job(job_id), "attempt") is None
    assert "end:slow" not in events(redis_client, namespace)


@pytest.mark.timeout(30)
def test_second_signal_exits_at_once(
    start_runner: Callable[..., RunnerProcess], redis_client: redis.Redis, namespace: str
) -> None:
    client = Client(redis_client, namespace=namespace)
    job_id = client.enqueue(QUEUE, Sleepy(tag="slow", seconds=20.0))
    runner = start_runner()
    wait_until(lambda: "start:slow" in events(redis_client, namespace), 10, "the slow job to start")

    runner.signal(signal.SIGTERM)
    wait_until(lambda: "stop requested" in runner.output(), 5, "the first signal to be handled")
    runner.signal(signal.SIGTERM)
    code = runner.wait(5)

    keys = QueueKeys.build(namespace, QUEUE.name)
    assert code == 1, runner.output()
    claimed = [
        item.decode()
        for key in redis_client.scan_iter(match=keys.processing_prefix + "*")
        for item in redis_client.lrange(key, 0, -1)
    ]
    assert claimed == [job_id]


@pytest.mark.timeout(40)
def test_killed_runner_job_is_reclaimed(
    start_runner: Callable[..., RunnerProcess], redis_client: redis.Redis, namespace: str
) -> None:
    client = Client(redis_client, namespace=namespace)
    job_id = client.enqueue(QUEUE, Sleepy(tag="victim", seconds=1.0))
    doomed = start_runner()
    wait_until(lambda: "start:victim" in events(redis_client, namespace), 10, "the job to start")

    doomed.signal(signal.SIGKILL)
    doomed.wait(5)
    killed_at = time.monotonic()
    start_runner()
    wait_until(lambda: "end:victim" in events(redis_client, namespace), 20, "the job to run again")

    # Default settings: lease 5 s, heartbeat every 1 s, so the bound is about 6 s.
    assert time.monotonic() - killed_at < 12
    assert events(redis_client, namespace) == ["start:victim", "start:victim", "end:victim"]
    assert client.stats([QUEUE])[0].succeeded == 1
    assert client.job(QUEUE, job_id) == {}
