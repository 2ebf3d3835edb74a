"""Leases across an expiry and across a Redis outage: no claim without a lease, and no reclaim
of a live Runner's jobs right after Redis comes back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from oxanus_sync import Client, Context, Queue, QueueConfig, Runner, RunnerSettings, Worker
from oxanus_sync.devserver import start_server
from oxanus_sync.storage.keys import QueueKeys
from tests.helpers import Recorder, build_config, started, wait_until

QUEUE = Queue("leased", QueueConfig(concurrency=2))

# A 1 s lease renewed every 0.25 s, so that an outage of a few seconds outlasts it.
SHORT_LEASE = RunnerSettings(
    shutdown_timeout_s=10, heartbeat_interval_s=0.25, lease_s=1.0, block_timeout_s=1.0
)


class Slow(Worker, name="tests.leases.Slow"):
    tag: str
    seconds: float

    def process(self, ctx: Context[Recorder]) -> None:
        ctx.shared.add(("start", self.tag))
        time.sleep(self.seconds)
        ctx.shared.add(("end", self.tag))


@pytest.fixture
def client(redis_url: str, namespace: str) -> Iterator[Client]:
    client = Client.from_url(redis_url, namespace=namespace)
    yield client
    client.close()


def test_expired_lease_claims_nothing(client: Client, namespace: str) -> None:
    keys = QueueKeys.build(namespace, QUEUE.name)
    client.enqueue(QUEUE, Slow(tag="waiting", seconds=0))
    client.redis.zadd(keys.leases, {"stalled": 0})

    lease_valid, jobs, _ = client.storage.claim(QUEUE.name, "stalled", 5)

    assert not lease_valid
    assert jobs == []
    assert client.redis.llen(keys.ready) == 1
    assert client.redis.llen(keys.processing("stalled")) == 0


def test_live_lease_claims(client: Client, namespace: str) -> None:
    keys = QueueKeys.build(namespace, QUEUE.name)
    job_id = client.enqueue(QUEUE, Slow(tag="waiting", seconds=0))
    client.redis.zadd(keys.leases, {"live": client.server_time_ms() + 60_000})

    lease_valid, jobs, _ = client.storage.claim(QUEUE.name, "live", 5)

    assert lease_valid
    assert [job.id for job in jobs] == [job_id]


@pytest.mark.timeout(60)
def test_outage_keeps_live_runner_jobs(tmp_path: Path) -> None:
    server = start_server(
        extra_args=["--appendonly", "yes", "--appendfsync", "always"], data_dir=tmp_path / "redis"
    )
    recorders = [Recorder(), Recorder()]
    clients = [Client.from_url(server.url, namespace="outage") for _ in recorders]
    runners = [
        Runner(build_config(client, [QUEUE], [Slow], SHORT_LEASE), context=recorder)
        for client, recorder in zip(clients, recorders, strict=True)
    ]
    try:
        with started(runners[0]):
            clients[0].enqueue(QUEUE, Slow(tag="long", seconds=5.0))
            wait_until(lambda: len(recorders[0]) == 1, 10, "the first Runner starts the job")
            with started(runners[1]):
                # Both leases expire while the server is down for three lease lengths.
                server.kill()
                time.sleep(3.0)
                server.start()
                wait_until(lambda: len(recorders[0]) == 2, 20, "the first Runner ends the job")
                counts = clients[0].stats([QUEUE])[0]
    finally:
        for client in clients:
            client.close()
        server.stop()

    assert recorders[0].events() == [("start", "long"), ("end", "long")]
    assert recorders[1].events() == []
    assert counts.succeeded == 1
    assert runners[0].stats.lost == 0
