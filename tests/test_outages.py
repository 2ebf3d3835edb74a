"""Redis outages seen by a Runner and a Client: a server killed and restarted, a lost
acknowledgement, connections killed or silently dead, a broken queue key, and enqueueing while
Redis is unreachable.

Every test starts its own redis-server on a free port of 127.0.0.1 with
`oxanus_sync.devserver.start_server`, and kills or restarts only that server. Runners run in
this process and record the jobs they run in a `Recorder`.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from oxanus_sync import (
    Client,
    Context,
    Queue,
    QueueConfig,
    RedisUnavailableError,
    Runner,
    RunnerSettings,
    Worker,
)
from oxanus_sync.client import COMMAND_TIMEOUT_S, RETRIES
from oxanus_sync.devserver import RedisProcess, start_server
from oxanus_sync.storage.keys import QueueKeys
from tests.fault_proxy import FaultProxy, Mode
from tests.helpers import Recorder, build_config, started, wait_until

ROOT = Path(__file__).resolve().parent.parent

NAMESPACE = "outage"
QUEUE = Queue("work", QueueConfig(concurrency=2))

AOF_ALWAYS = ("--appendonly", "yes", "--appendfsync", "always")

# A fetcher that wakes from BLMOVE every second, with the default 5 s lease.
BLOCK_1S = RunnerSettings(shutdown_timeout_s=5, block_timeout_s=1.0)

# A 1 s lease renewed every 0.25 s, and a fetcher that wakes from BLMOVE every second.
SHORT_LEASE = RunnerSettings(
    shutdown_timeout_s=5, heartbeat_interval_s=0.25, lease_s=1.0, block_timeout_s=1.0
)

# Time that a killed server stays down. The Runner's threads retry with a backoff that doubles
# from 0.1 s (oxanus_sync.runner.service), so after this outage each retries within about 2 s.
OUTAGE_S = 2.0

# Maximum time from a server's restart to the run of a scheduled job that came due during the
# outage: the scheduler's and the fetcher's backoff of up to OUTAGE_S, plus polling. Measured on
# a 2-CPU Linux VM with redis-server 7.0.15 and redis-py 8.2: 0.06 to 0.30 s.
OVERDUE_RUN_LIMIT_S = 3.0

# Maximum time for the self-audit to give back a job that Redis lists as claimed by a Runner
# that does not hold it: two audits in a row, 0.25 s apart with SHORT_LEASE, must see the job.
# Measured as above: 0.50 s.
AUDIT_LIMIT_S = 3.0

# The fetcher's BLMOVE socket times out after block_timeout_s + 5 s (Storage.blocking_client),
# and the retry that follows opens a new connection. Measured as above with block_timeout_s 1
# and a 3 s outage: the job ran 3.1 s after the link came back, 6.0 s after it died, and its
# success was recorded 8.2 s after the link came back.
DEAD_LINK_LIMIT_S = 15.0

# Client.from_url tries a command RETRIES + 1 times. A refused connection fails each try at
# once; a silently dead link fails each try after COMMAND_TIMEOUT_S. Measured as above: 0.1 to
# 0.2 s when refused, 15.1 to 15.2 s through a dead link.
REFUSED_ENQUEUE_LIMIT_S = 15.0
DEAD_LINK_ENQUEUE_LIMIT_S = (RETRIES + 1) * COMMAND_TIMEOUT_S + 5.0


class Mark(Worker, name="tests.outages.Mark"):
    """Records `(tag, time.monotonic())` after sleeping `seconds`."""

    tag: str
    seconds: float = 0.0

    def process(self, ctx: Context[Recorder]) -> None:
        time.sleep(self.seconds)
        ctx.shared.add((self.tag, time.monotonic()))


class Gate(Recorder):
    """A Recorder with an event that `Hold` jobs wait for."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()


class Hold(Worker, name="tests.outages.Hold"):
    """Records `("start", tag)`, waits for `Gate.release`, then records `("end", tag)`."""

    tag: str

    def process(self, ctx: Context[Gate]) -> None:
        ctx.shared.add(("start", self.tag))
        if not ctx.shared.release.wait(timeout=20):
            raise TimeoutError("the test never released this job")
        ctx.shared.add(("end", self.tag))


# Fixtures and helpers


@pytest.fixture
def servers() -> Iterator[Callable[..., RedisProcess]]:
    """Start redis-servers with `start_server` arguments, and stop each after the test."""
    started_servers: list[RedisProcess] = []

    def start(
        *, port: int | None = None, extra_args: Sequence[str] = (), data_dir: Path | None = None
    ) -> RedisProcess:
        server = start_server(port=port, extra_args=extra_args, data_dir=data_dir)
        started_servers.append(server)
        return server

    yield start
    for server in started_servers:
        server.stop()


@pytest.fixture
def clients() -> Iterator[Callable[[str], Client]]:
    """Build Clients of a URL in NAMESPACE, and close each after the test."""
    opened: list[Client] = []

    def connect(url: str) -> Client:
        client = Client.from_url(url, namespace=NAMESPACE)
        opened.append(client)
        return client

    yield connect
    for client in opened:
        client.close()


@pytest.fixture
def outage_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture the library's warnings and errors, from every thread."""
    caplog.set_level(logging.WARNING, logger="oxanus_sync")
    return caplog


def tags(recorder: Recorder) -> set[str]:
    return {tag for tag, _ in recorder.events()}


def run_times(recorder: Recorder, tag: str) -> list[float]:
    return [at for seen, at in recorder.events() if seen == tag]


def redis_error_warnings(log: pytest.LogCaptureFixture) -> list[str]:
    """Return the messages of WARNING records that report a failed Redis call."""
    return [
        record.getMessage()
        for record in log.records
        if record.levelno == logging.WARNING and "Redis error" in record.getMessage()
    ]


def lost_lease_errors(log: pytest.LogCaptureFixture) -> list[str]:
    """Return the messages of ERROR records that report a lost lease."""
    return [
        record.getMessage()
        for record in log.records
        if record.levelno == logging.ERROR and "lease" in record.getMessage()
    ]


def ready_ids(client: Client) -> list[str]:
    """Return the ids in QUEUE's ready list, oldest last."""
    ids = client.redis.lrange(QueueKeys.build(NAMESPACE, QUEUE.name).ready, 0, -1)
    return [job_id.decode() if isinstance(job_id, bytes) else job_id for job_id in ids]


def proxy_to(server: RedisProcess) -> FaultProxy:
    assert server.port is not None, f"{server.url} listens on no TCP port"
    return FaultProxy(server.port)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def fetcher_blocked(server: RedisProcess, runner: Runner) -> bool:
    """Return whether a fetcher connection of `runner` is blocked in a command on `server`."""
    prefix = f"oxanus-fetch-{runner.process_id}-"
    with redis.Redis.from_url(server.url) as admin:
        entries = admin.client_list()
    return any(
        str(entry.get("name", "")).startswith(prefix) and "b" in str(entry.get("flags", ""))
        for entry in entries
    )


def kill_normal_clients(server: RedisProcess) -> int:
    """Close every normal client connection of `server` but this one; return how many."""
    with redis.Redis.from_url(server.url) as admin:
        return int(admin.client_kill_filter(_type="normal", skipme=True))


def kill_for_outage(server: RedisProcess, log: pytest.LogCaptureFixture) -> None:
    """Kill `server` with SIGKILL, wait until the library logs a Redis error and OUTAGE_S has
    passed, then start the server again on its port and data directory."""
    killed_at = time.monotonic()
    server.kill()
    wait_until(lambda: redis_error_warnings(log), 10, "a Runner thread logs a Redis error")
    wait_until(lambda: time.monotonic() >= killed_at + OUTAGE_S, 10, "the outage has lasted")
    server.start()


# Server killed and restarted


@pytest.mark.timeout(60)
def test_restart_with_aof_loses_no_job(
    servers: Callable[..., RedisProcess],
    clients: Callable[[str], Client],
    outage_log: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    server = servers(extra_args=AOF_ALWAYS, data_dir=tmp_path / "redis")
    client = clients(server.url)
    recorder = Recorder()
    runner = Runner(build_config(client, [QUEUE], [Mark]), context=recorder)
    before = [f"before-{i}" for i in range(200)]
    client.enqueue_many(QUEUE, [Mark(tag=tag, seconds=0.01) for tag in before])

    with started(runner):
        wait_until(lambda: len(recorder) >= 20, 10, "the Runner has run 20 jobs")
        kill_for_outage(server, outage_log)

        wait_until(
            lambda: tags(recorder) >= set(before), 20, "every job enqueued before the kill ran"
        )
        client.enqueue(QUEUE, Mark(tag="after"))
        wait_until(lambda: "after" in tags(recorder), 15, "the job enqueued after the restart ran")
        wait_until(lambda: runner.busy() == 0, 10, "the Runner has finished its jobs")

    [counts] = client.stats([QUEUE])
    assert redis_error_warnings(outage_log)
    assert set(before) <= tags(recorder)
    assert counts.ready == 0
    assert counts.running == 0
    assert counts.dead == 0
    assert counts.succeeded >= len(before) + 1


@pytest.mark.timeout(60)
def test_restart_runs_overdue_job_promptly(
    servers: Callable[..., RedisProcess],
    clients: Callable[[str], Client],
    outage_log: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    server = servers(extra_args=AOF_ALWAYS, data_dir=tmp_path / "redis")
    client = clients(server.url)
    recorder = Recorder()
    runner = Runner(build_config(client, [QUEUE], [Mark]), context=recorder)

    with started(runner):
        client.enqueue(QUEUE, Mark(tag="warm-up"))
        wait_until(lambda: "warm-up" in tags(recorder), 10, "the warm-up job ran")
        enqueued_at = time.monotonic()
        client.enqueue_in(QUEUE, Mark(tag="overdue"), 1.0)
        server.kill()
        assert "overdue" not in tags(recorder)

        # Redis stays down until the job's due time has passed on this host's clock.
        wait_until(
            lambda: redis_error_warnings(outage_log), 10, "a Runner thread logs a Redis error"
        )
        wait_until(lambda: time.monotonic() > enqueued_at + OUTAGE_S, 10, "the job is overdue")
        server.start()
        restarted_at = time.monotonic()
        wait_until(lambda: "overdue" in tags(recorder), 15, "the overdue job ran")

    [ran_at] = run_times(recorder, "overdue")
    assert ran_at - restarted_at < OVERDUE_RUN_LIMIT_S


@pytest.mark.timeout(60)
def test_heartbeat_rewrites_registry_after_restart(
    servers: Callable[..., RedisProcess],
    clients: Callable[[str], Client],
    outage_log: pytest.LogCaptureFixture,
) -> None:
    # No persistence: the restarted server is empty, so only the heartbeat can bring the
    # process's registry entry back.
    server = servers()
    client = clients(server.url)
    recorder = Recorder()
    runner = Runner(build_config(client, [QUEUE], [Mark], SHORT_LEASE), context=recorder)

    def registered() -> bool:
        return runner.process_id in {record.id for record in client.processes()}

    with started(runner):
        wait_until(registered, 5, "the Runner is in the process registry")
        kill_for_outage(server, outage_log)

        wait_until(registered, 10, "the Runner is back in the process registry")
        client.enqueue(QUEUE, Mark(tag="after"))
        wait_until(lambda: "after" in tags(recorder), 10, "the job enqueued after the restart ran")


# A claim that the Runner never received


@pytest.mark.timeout(30)
def test_unknown_claim_is_given_back(
    servers: Callable[..., RedisProcess], clients: Callable[[str], Client]
) -> None:
    server = servers()
    client = clients(server.url)
    recorder = Recorder()
    runner = Runner(build_config(client, [QUEUE], [Mark], SHORT_LEASE), context=recorder)
    keys = QueueKeys.build(NAMESPACE, QUEUE.name)

    with started(runner):
        wait_until(lambda: runner.heartbeat.beats >= 2, 5, "the heartbeat has run twice")

        # A job that Redis lists as claimed by this Runner, as when the reply to a claim was
        # lost: the job hash comes from a normal enqueue, delayed so that no fetcher takes it.
        job_id = client.enqueue_in(QUEUE, Mark(tag="orphan"), 3600)
        pipe = client.redis.pipeline(transaction=True)
        pipe.zrem(keys.scheduled, job_id)
        pipe.lpush(keys.processing(runner.process_id), job_id)
        pipe.execute()
        planted_at = time.monotonic()

        wait_until(lambda: "orphan" in tags(recorder), 10, "the orphaned job ran")
        wait_until(lambda: runner.busy() == 0, 10, "the Runner has finished the job")

    [ran_at] = run_times(recorder, "orphan")
    assert ran_at - planted_at < AUDIT_LIMIT_S
    assert client.redis.llen(keys.processing(runner.process_id)) == 0


# Connections killed or silently dead


@pytest.mark.timeout(60)
def test_dead_link_while_blocked_recovers(
    servers: Callable[..., RedisProcess], clients: Callable[[str], Client]
) -> None:
    server = servers()
    with proxy_to(server) as proxy:
        through_proxy = clients(proxy.url)
        direct = clients(server.url)
        recorder = Recorder()
        runner = Runner(build_config(through_proxy, [QUEUE], [Mark], BLOCK_1S), context=recorder)

        with started(runner):
            direct.enqueue(QUEUE, Mark(tag="before"))
            wait_until(lambda: "before" in tags(recorder), 10, "the first job ran")
            wait_until(lambda: fetcher_blocked(server, runner), 10, "the fetcher waits in BLMOVE")

            proxy.set_mode(Mode.BLACKHOLE)
            # The outage itself. The recovery below is measured with a deadline.
            time.sleep(3.0)
            proxy.set_mode(Mode.FORWARD)
            forward_at = time.monotonic()
            direct.enqueue(QUEUE, Mark(tag="after"))
            wait_until(
                lambda: "after" in tags(recorder), 30, "the job enqueued after the outage ran"
            )
            # Its acknowledgement may first go out on a pooled connection that died with the
            # link, and then waits for the command timeout before a retry on a new connection.
            wait_until(
                lambda: direct.stats([QUEUE])[0].succeeded == 2, 30, "the job's success is recorded"
            )

    [ran_at] = run_times(recorder, "after")
    assert ran_at - forward_at < DEAD_LINK_LIMIT_S


@pytest.mark.timeout(60)
def test_dead_link_keeps_lease(
    servers: Callable[..., RedisProcess],
    clients: Callable[[str], Client],
    outage_log: pytest.LogCaptureFixture,
) -> None:
    server = servers()
    with proxy_to(server) as proxy:
        client = clients(proxy.url)
        settings = RunnerSettings(shutdown_timeout_s=5)
        runner = Runner(build_config(client, [QUEUE], [Mark], settings), context=Recorder())

        with started(runner):
            wait_until(lambda: runner.heartbeat.beats >= 2, 10, "the heartbeat has run twice")
            proxy.set_mode(Mode.BLACKHOLE)
            # The outage itself, shorter than the 5 s lease.
            time.sleep(1.0)
            proxy.set_mode(Mode.FORWARD)
            beats = runner.heartbeat.beats
            wait_until(lambda: runner.heartbeat.beats >= beats + 2, 20, "two more heartbeats")

    assert lost_lease_errors(outage_log) == []


@pytest.mark.timeout(30)
def test_client_kill_while_idle(
    servers: Callable[..., RedisProcess], clients: Callable[[str], Client]
) -> None:
    server = servers()
    client = clients(server.url)
    recorder = Recorder()
    runner = Runner(build_config(client, [QUEUE], [Mark], SHORT_LEASE), context=recorder)

    with started(runner):
        wait_until(lambda: fetcher_blocked(server, runner), 10, "the fetcher waits in BLMOVE")
        killed = kill_normal_clients(server)
        client.enqueue(QUEUE, Mark(tag="after"))
        wait_until(lambda: "after" in tags(recorder), 10, "the job enqueued after the kill ran")

    assert killed >= 2


@pytest.mark.timeout(30)
def test_client_kill_while_busy(
    servers: Callable[..., RedisProcess], clients: Callable[[str], Client]
) -> None:
    server = servers()
    client = clients(server.url)
    gate = Gate()
    runner = Runner(build_config(client, [QUEUE], [Hold], SHORT_LEASE), context=gate)
    keys = QueueKeys.build(NAMESPACE, QUEUE.name)

    with started(runner):
        client.enqueue(QUEUE, Hold(tag="held"))
        wait_until(lambda: ("start", "held") in gate.events(), 10, "the held job started")
        killed = kill_normal_clients(server)
        gate.release.set()
        wait_until(lambda: ("end", "held") in gate.events(), 10, "the held job ended")

        client.enqueue(QUEUE, Hold(tag="after"))
        wait_until(lambda: ("end", "after") in gate.events(), 10, "the job enqueued after ran")
        wait_until(lambda: runner.busy() == 0, 10, "the Runner has finished its jobs")

    [counts] = client.stats([QUEUE])
    assert killed >= 2
    assert counts.succeeded == 2
    assert counts.running == 0
    assert client.redis.llen(keys.processing(runner.process_id)) == 0


# A thread that fails on every step

BROKEN = Queue("broken", QueueConfig(concurrency=1))
HEALTHY = Queue("healthy", QueueConfig(concurrency=1))
BROKEN_FETCHER = f"oxanus-fetch-{BROKEN.name}"


@dataclass
class BrokenQueue:
    """A Runner serving BROKEN and HEALTHY, where BROKEN's ready key is a string."""

    server: RedisProcess
    client: Client
    runner: Runner
    recorder: Recorder

    def failing(self) -> dict[str, str]:
        """Return the `failing` entry of the Runner's registry record: thread -> last error."""
        [record] = self.client.processes()
        value: dict[str, str] = json.loads(record.raw["failing"])
        return value


@pytest.fixture
def broken_queue(
    servers: Callable[..., RedisProcess], clients: Callable[[str], Client]
) -> Iterator[BrokenQueue]:
    """Yield a running Runner whose BROKEN fetcher is listed as failing."""
    server = servers()
    client = clients(server.url)
    recorder = Recorder()
    config = build_config(client, [BROKEN, HEALTHY], [Mark], SHORT_LEASE)
    setup = BrokenQueue(server, client, Runner(config, context=recorder), recorder)

    with started(setup.runner):
        # A string where the ready list belongs makes every claim fail with WRONGTYPE.
        client.redis.set(QueueKeys.build(NAMESPACE, BROKEN.name).ready, "x")
        wait_until(lambda: BROKEN_FETCHER in setup.failing(), 10, "the fetcher is listed failing")
        yield setup


@pytest.mark.timeout(60)
def test_failing_fetcher_listed_then_cleared(broken_queue: BrokenQueue) -> None:
    client, recorder = broken_queue.client, broken_queue.recorder

    client.enqueue(HEALTHY, Mark(tag="healthy"))
    wait_until(lambda: "healthy" in tags(recorder), 10, "the healthy queue ran a job")
    listed_failing = broken_queue.failing()

    client.redis.delete(QueueKeys.build(NAMESPACE, BROKEN.name).ready)
    wait_until(lambda: not broken_queue.failing(), 15, "the failing entry is empty")
    client.enqueue(BROKEN, Mark(tag="repaired"))
    wait_until(lambda: "repaired" in tags(recorder), 15, "the repaired queue ran a job")

    assert list(listed_failing) == [BROKEN_FETCHER]


@pytest.mark.timeout(30)
def test_failing_entry_shows_error(broken_queue: BrokenQueue) -> None:
    assert "WRONGTYPE" in broken_queue.failing()[BROKEN_FETCHER]


@pytest.mark.timeout(60)
def test_info_shows_failing_fetcher(broken_queue: BrokenQueue) -> None:
    command = [sys.executable, "-m", "oxanus_sync", "info"]
    info = subprocess.run(
        [*command, "--url", broken_queue.server.url, "--namespace", NAMESPACE],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert info.returncode == 0, info.stderr
    assert BROKEN_FETCHER in info.stdout


# Enqueueing while Redis is unreachable


@pytest.mark.timeout(60)
def test_enqueue_refused_raises(
    servers: Callable[..., RedisProcess], clients: Callable[[str], Client]
) -> None:
    port = free_port()
    client = clients(f"redis://127.0.0.1:{port}")

    started_at = time.monotonic()
    with pytest.raises(RedisUnavailableError):
        client.enqueue(QUEUE, Mark(tag="lost"))
    elapsed_s = time.monotonic() - started_at

    servers(port=port)
    kept_id = client.enqueue(QUEUE, Mark(tag="kept"))
    keys = QueueKeys.build(NAMESPACE, QUEUE.name)
    assert elapsed_s < REFUSED_ENQUEUE_LIMIT_S
    assert ready_ids(client) == [kept_id]
    assert list(client.redis.scan_iter(match=keys.job_prefix + "*")) == [keys.job(kept_id).encode()]


@pytest.mark.timeout(60)
def test_enqueue_dead_link_raises(
    servers: Callable[..., RedisProcess], clients: Callable[[str], Client]
) -> None:
    server = servers()
    keys = QueueKeys.build(NAMESPACE, QUEUE.name)
    with proxy_to(server) as proxy:
        client = clients(proxy.url)
        proxy.set_mode(Mode.BLACKHOLE)

        started_at = time.monotonic()
        with pytest.raises(RedisUnavailableError):
            client.enqueue(QUEUE, Mark(tag="lost"))
        elapsed_s = time.monotonic() - started_at

        proxy.set_mode(Mode.FORWARD)
        kept_id = client.enqueue(QUEUE, Mark(tag="kept"))
        ready = ready_ids(client)
        jobs = list(client.redis.scan_iter(match=keys.job_prefix + "*"))

    assert elapsed_s < DEAD_LINK_ENQUEUE_LIMIT_S
    assert ready == [kept_id]
    assert jobs == [keys.job(kept_id).encode()]
