"""Sentinel connections and failover: `redis+sentinel://` URLs, `Client.from_sentinel`, Runners
whose heartbeat and blocking connections go through Sentinel, a promotion after the primary is
killed or after SENTINEL FAILOVER, and enqueues that WAIT for a replica.

Each server test starts its own primary, replica and Sentinel with
`tests.sentinel.start_sentinel_group` and kills only those. Runners run in this process and
record the jobs they run in a `Recorder`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis
from redis.sentinel import Sentinel, SentinelConnectionPool

from oxanus_sync import Client, ConfigurationError, Context, Queue, QueueConfig, Runner, Worker
from oxanus_sync.config import RunnerSettings
from oxanus_sync.errors import NotReplicatedError
from oxanus_sync.storage.keys import GlobalKeys, QueueKeys
from tests.helpers import Recorder, build_config, started, wait_until
from tests.sentinel import SentinelGroup, start_sentinel_group, wait_for

NAMESPACE = "failover"
QUEUE = Queue("work", QueueConfig(concurrency=2))

# A fetcher that wakes from BLMOVE every second, with the default 1 s heartbeat and 5 s lease.
SETTINGS = RunnerSettings(shutdown_timeout_s=5, block_timeout_s=1.0)

# Maximum time from the fault to the Sentinel reporting the replica as primary: 1 s to mark
# the primary down (DOWN_AFTER_MS), then the election and the promotion. Measured on a 2-CPU
# Linux VM with redis-server 7.0.15 and redis-py 8.2: 2.1 to 2.9 s after SIGKILL, 0.8 to
# 1.1 s after SENTINEL FAILOVER.
PROMOTION_LIMIT_S = 15.0

# Maximum time from the promotion until every job runs: the Runner's threads retry with a
# backoff of at most 2 s (oxanus_sync.runner.service), and a job whose acknowledgement the
# promoted replica never received runs again after two audits of the heartbeat. Measured as
# above after SIGKILL: every job had run 0.4 to 1.6 s after the promotion.
RECOVERY_LIMIT_S = 20.0

# Maximum time for an enqueue whose WAIT times out after WAIT_TIMEOUT_MS to raise.
WAIT_TIMEOUT_MS = 500
WAIT_ERROR_LIMIT_S = 5.0

JOB_RUN_LIMIT_S = 10.0

# After SENTINEL FAILOVER the old primary, still running, keeps accepting writes until the
# Sentinel turns it into a replica, about 10 s after the promotion. Runner connections opened
# before the failover may work on it until then, and their work there is lost, so jobs run
# again afterwards. Measured as above: every job had run 1.8 to 3.1 s after the command, 20 to
# 32 of 40 jobs ran twice, and the old primary became a replica 11.3 s after the command.
SPLIT_RECOVERY_LIMIT_S = 30.0


class Mark(Worker, name="tests.failover.Mark"):
    """Records its `tag` after sleeping `seconds`."""

    tag: str
    seconds: float = 0.0

    def process(self, ctx: Context[Recorder]) -> None:
        time.sleep(self.seconds)
        ctx.shared.add(self.tag)


@pytest.fixture
def group() -> Iterator[SentinelGroup]:
    with start_sentinel_group() as group:
        yield group


@pytest.fixture
def url_client(group: SentinelGroup) -> Iterator[Client]:
    client = Client.from_url(group.url, namespace=NAMESPACE)
    yield client
    client.close()


@pytest.fixture
def sentinel(group: SentinelGroup) -> Iterator[Sentinel]:
    manager = group.sentinel_manager()
    yield manager
    manager.close()


def runner_for(client: Client, recorder: Recorder) -> Runner:
    return Runner(build_config(client, [QUEUE], [Mark], SETTINGS), context=recorder)


def ran_all(recorder: Recorder, tags: list[str]) -> bool:
    return set(tags) <= set(recorder.events())


def client_names(server: redis.Redis) -> set[str]:
    return {str(entry["name"]) for entry in server.client_list()}


def server_time_ms(server: redis.Redis) -> int:
    seconds, micros = server.time()
    return int(seconds) * 1000 + int(micros) // 1000


def last_beat_ms(server: redis.Redis, process_id: str) -> int:
    """Return the last heartbeat time that `server` holds for a Runner, or 0 if none."""
    beat = server.hget(GlobalKeys.build(NAMESPACE).process(process_id), "last_beat")
    return int(beat) if beat else 0


# URL syntax and options; these make no connection.


def test_sentinel_url_parses_parts() -> None:
    url = (
        "redis+sentinel://app:s%3Acret@127.0.0.1:26380,[::1],sentinel-2/orders/3"
        "?sentinel_password=guard"
    )
    client = Client.from_url(url, namespace=NAMESPACE)
    pool = client.redis.connection_pool
    manager = pool.sentinel_manager

    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "orders"
    assert pool.connection_kwargs["db"] == 3
    assert pool.connection_kwargs["username"] == "app"
    assert pool.connection_kwargs["password"] == "s:cret"
    assert [
        (
            sentinel.connection_pool.connection_kwargs["host"],
            sentinel.connection_pool.connection_kwargs["port"],
        )
        for sentinel in manager.sentinels
    ] == [("127.0.0.1", 26380), ("::1", 26379), ("sentinel-2", 26379)]
    assert manager.sentinel_kwargs["password"] == "guard"
    client.close()


def test_sentinel_url_keeps_default_timeouts() -> None:
    client = Client.from_url("redis+sentinel://127.0.0.1/orders", namespace=NAMESPACE)
    options = client.redis.connection_pool.connection_kwargs
    sentinel_options = client.redis.connection_pool.sentinel_manager.sentinel_kwargs

    assert options["socket_connect_timeout"] == 2.0
    assert options["socket_timeout"] == 5.0
    assert options["retry"].get_retries() == 2
    assert sentinel_options["socket_timeout"] == 5.0
    client.close()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("redis+sentinel://127.0.0.1:26379", "service name is missing"),
        ("redis+sentinel://127.0.0.1:26379/orders/first", "invalid database number"),
        ("redis+sentinel://127.0.0.1:port/orders", "invalid port"),
        ("redis+sentinel://127.0.0.1,/orders", "address is missing"),
        ("redis+sentinel://127.0.0.1/orders?ssl=true", "unknown option 'ssl'"),
    ],
)
def test_invalid_sentinel_url_raises(url: str, reason: str) -> None:
    with pytest.raises(ConfigurationError, match=reason):
        Client.from_url(url, namespace=NAMESPACE)


def test_sentinel_url_error_hides_passwords() -> None:
    url = "redis+sentinel://app:hunter2@127.0.0.1:port/orders?sentinel_password=swordfish"

    with pytest.raises(ConfigurationError) as caught:
        Client.from_url(url, namespace=NAMESPACE)

    assert "hunter2" not in str(caught.value)
    assert "swordfish" not in str(caught.value)


def test_from_sentinel_keeps_sentinel_timeout() -> None:
    manager = Sentinel([("127.0.0.1", 26379)], socket_timeout=0.7)
    client = Client.from_sentinel(manager, "orders", namespace=NAMESPACE)
    options = client.redis.connection_pool.connection_kwargs

    assert options["socket_timeout"] == 0.7
    assert options["socket_connect_timeout"] == 2.0
    client.close()
    manager.close()


def test_wait_past_socket_timeout_raises() -> None:
    with pytest.raises(ConfigurationError, match="socket timeout"):
        Client.from_url(
            "redis://127.0.0.1:1/0", namespace=NAMESPACE, wait_replicas=1, wait_timeout_ms=4800
        )


# Runners through Sentinel


@pytest.mark.timeout(30)
def test_url_client_runner_runs_jobs(url_client: Client) -> None:
    recorder = Recorder()
    tags = [f"job-{i}" for i in range(10)]

    with started(runner_for(url_client, recorder)):
        url_client.enqueue_many(QUEUE, [Mark(tag=tag) for tag in tags])
        wait_until(lambda: ran_all(recorder, tags), JOB_RUN_LIMIT_S, "every job ran")


@pytest.mark.timeout(30)
def test_from_sentinel_runner_runs_jobs(sentinel: Sentinel) -> None:
    recorder = Recorder()
    tags = [f"job-{i}" for i in range(10)]
    client = Client.from_sentinel(sentinel, "oxanus-primary", namespace=NAMESPACE)

    with started(runner_for(client, recorder)):
        client.enqueue_many(QUEUE, [Mark(tag=tag) for tag in tags])
        wait_until(lambda: ran_all(recorder, tags), JOB_RUN_LIMIT_S, "every job ran")
    client.close()


@pytest.mark.timeout(30)
def test_runner_connections_reach_primary(group: SentinelGroup, url_client: Client) -> None:
    runner = runner_for(url_client, Recorder())
    fetcher_name = f"oxanus-fetch-{runner.process_id}-{QUEUE.name}"
    heartbeat_name = f"oxanus-heartbeat-{runner.process_id}"

    primary = group.direct(group.primary)

    with started(runner):
        wait_until(
            lambda: fetcher_name in client_names(primary),
            JOB_RUN_LIMIT_S,
            "the fetcher's blocking connection is open on the primary",
        )
        assert heartbeat_name in client_names(primary)


# WAIT for replicas


@pytest.mark.timeout(30)
def test_wait_enqueue_reaches_replica(group: SentinelGroup) -> None:
    client = Client.from_url(group.url, namespace=NAMESPACE, wait_replicas=1)
    job_ids = client.enqueue_many(QUEUE, [Mark(tag=f"job-{i}") for i in range(3)])
    keys = QueueKeys.build(NAMESPACE, QUEUE.name)

    # WAIT returned, so the replica has the jobs now, with no polling.
    replica = group.direct(group.replica)
    assert replica.exists(*(keys.job(job_id) for job_id in job_ids)) == 3
    assert replica.llen(keys.ready) == 3
    client.close()


@pytest.mark.timeout(30)
def test_wait_without_replica_raises(group: SentinelGroup) -> None:
    client = Client.from_url(
        group.url, namespace=NAMESPACE, wait_replicas=1, wait_timeout_ms=WAIT_TIMEOUT_MS
    )
    group.replica.kill()
    wait_for(
        lambda: group.direct(group.primary).info("replication")["connected_slaves"] == 0,
        JOB_RUN_LIMIT_S,
        "the primary has no replica",
    )

    started_at = time.monotonic()
    with pytest.raises(NotReplicatedError) as caught:
        client.enqueue(QUEUE, Mark(tag="unreplicated"))
    elapsed_s = time.monotonic() - started_at

    stored = caught.value.enqueued_ids
    assert len(stored) == 1
    assert stored[0] in str(caught.value)
    assert "0 of 1 replicas" in str(caught.value)
    assert client.job(QUEUE, stored[0]) != {}
    assert elapsed_s < WAIT_ERROR_LIMIT_S
    client.close()


# Failover


@pytest.mark.timeout(60)
def test_killed_primary_runner_follows(group: SentinelGroup) -> None:
    recorder = Recorder()
    before = [f"before-{i}" for i in range(20)]
    after = [f"after-{i}" for i in range(5)]
    client = Client.from_url(group.url, namespace=NAMESPACE, wait_replicas=1)
    client.enqueue_many(QUEUE, [Mark(tag=tag, seconds=0.05) for tag in before])
    runner = runner_for(client, recorder)
    promoted = group.direct(group.replica)

    with started(runner):
        wait_until(lambda: len(recorder) >= 3, JOB_RUN_LIMIT_S, "the Runner ran 3 jobs")
        group.primary.kill()
        wait_for(
            lambda: group.primary_port() == group.replica.port,
            PROMOTION_LIMIT_S,
            "the Sentinel promotes the replica",
        )
        promoted_at_ms = server_time_ms(promoted)
        wait_until(
            lambda: ran_all(recorder, before),
            RECOVERY_LIMIT_S,
            "every job enqueued before the failover ran",
        )
        wait_until(
            lambda: last_beat_ms(promoted, runner.process_id) > promoted_at_ms,
            RECOVERY_LIMIT_S,
            "the heartbeat reaches the promoted replica",
        )
        wait_until(
            lambda: f"oxanus-fetch-{runner.process_id}-{QUEUE.name}" in client_names(promoted),
            RECOVERY_LIMIT_S,
            "the fetcher blocks on the promoted replica",
        )

        # The promoted replica has no replica of its own, so this client does not WAIT.
        plain = Client.from_url(group.url, namespace=NAMESPACE)
        plain.enqueue_many(QUEUE, [Mark(tag=tag) for tag in after])
        wait_until(
            lambda: ran_all(recorder, after),
            JOB_RUN_LIMIT_S,
            "every job enqueued after the failover ran",
        )
    plain.close()
    client.close()


@pytest.mark.timeout(60)
def test_failover_command_runner_follows(group: SentinelGroup) -> None:
    recorder = Recorder()
    before = [f"before-{i}" for i in range(40)]
    after = [f"after-{i}" for i in range(5)]
    client = Client.from_url(group.url, namespace=NAMESPACE, wait_replicas=1)
    client.enqueue_many(QUEUE, [Mark(tag=tag, seconds=0.1) for tag in before])

    with started(runner_for(client, recorder)):
        wait_until(lambda: len(recorder) >= 3, JOB_RUN_LIMIT_S, "the Runner ran 3 jobs")
        group.direct(group.sentinel).sentinel_failover(group.service_name)
        wait_for(
            lambda: group.primary_port() == group.replica.port,
            PROMOTION_LIMIT_S,
            "the Sentinel promotes the replica",
        )

        # A new client connects to the promoted replica. The old primary stays writable
        # until the Sentinel turns it into a replica, 10 s later, and connections opened
        # before the failover keep using it until then.
        fresh = Client.from_url(group.url, namespace=NAMESPACE)
        fresh.enqueue_many(QUEUE, [Mark(tag=tag) for tag in after])
        wait_until(
            lambda: ran_all(recorder, before),
            SPLIT_RECOVERY_LIMIT_S,
            "every job enqueued before the failover ran",
        )
        wait_until(
            lambda: ran_all(recorder, after),
            SPLIT_RECOVERY_LIMIT_S,
            "every job enqueued after the failover ran",
        )
    fresh.close()
    client.close()


@pytest.mark.timeout(30)
def test_wait_enqueue_to_old_primary_raises(group: SentinelGroup) -> None:
    # A longer WAIT than the other tests: on a loaded machine the replica's acknowledgement of
    # the first enqueue has taken over 500 ms.
    client = Client.from_url(group.url, namespace=NAMESPACE, wait_replicas=1, wait_timeout_ms=2000)
    # Leaves one idle connection to the primary in the client's pool.
    client.enqueue(QUEUE, Mark(tag="first"))
    group.direct(group.sentinel).sentinel_failover(group.service_name)
    wait_for(
        lambda: group.primary_port() == group.replica.port,
        PROMOTION_LIMIT_S,
        "the Sentinel promotes the replica",
    )

    # The idle connection still reaches the old primary, which lost its only replica.
    with pytest.raises(NotReplicatedError) as caught:
        client.enqueue(QUEUE, Mark(tag="second"))

    assert len(caught.value.enqueued_ids) == 1
    client.close()
