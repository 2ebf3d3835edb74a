"""Queue families: members made at enqueue time, served fairly by one fetcher and pool per
Runner, with the same crash recovery, retries, scheduling, dead set and cancellation as static
queues."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
import redis

from oxanus_sync import (
    Client,
    Config,
    ConfigurationError,
    Context,
    Queue,
    QueueConfig,
    QueueFamily,
    RetryLater,
    Runner,
    RunnerSettings,
    Throttle,
    Worker,
)
from oxanus_sync.storage.keys import QueueKeys
from oxanus_sync.unique import OnConflict
from tests.crash_app import FAMILY_PREFIX, CountRun, Probe, events_key, runs_key
from tests.helpers import ROOT, Recorder, RunnerProcess, build_config, started, wait_until

TENANTS = QueueFamily("tenants", QueueConfig(concurrency=4))
FAST_SETTINGS = RunnerSettings(shutdown_timeout_s=5, block_timeout_s=0.5)
# A Runner's jobs come back 1 to 1.25 s after its last heartbeat with these options.
SHORT_LEASE = ["--lease", "1.0", "--heartbeat", "0.25"]
CRASH_FAMILY = QueueFamily(FAMILY_PREFIX)
INFO_COMMAND = [sys.executable, "-m", "oxanus_sync", "info"]


class Record(Worker, name="tests.families.Record"):
    label: str

    def process(self, ctx: Context[Recorder]) -> None:
        ctx.shared.add((ctx.meta.queue, self.label))


class Sleep(Worker, name="tests.families.Sleep"):
    """Records its start and end, sleeping `seconds` in between."""

    label: str
    seconds: float

    def process(self, ctx: Context[Recorder]) -> None:
        ctx.shared.add(("start", self.label, time.monotonic()))
        time.sleep(self.seconds)
        ctx.shared.add(("end", self.label, time.monotonic()))


class FailOnce(Worker, name="tests.families.FailOnce"):
    label: str

    def process(self, ctx: Context[Recorder]) -> None:
        ctx.shared.add((ctx.meta.queue, self.label, ctx.meta.attempt))
        if ctx.meta.attempt == 1:
            raise RetryLater(0.0)


class AlwaysFail(Worker, name="tests.families.AlwaysFail"):
    max_retries = 0

    def process(self, ctx: Context[Any]) -> None:
        raise RuntimeError("fails on purpose")


class WaitForCancel(Worker, name="tests.families.WaitForCancel"):
    def process(self, ctx: Context[Recorder]) -> None:
        ctx.shared.add("started")
        deadline = time.monotonic() + 20
        while not ctx.cancelled and time.monotonic() < deadline:
            time.sleep(0.01)
        ctx.shared.add("cancelled" if ctx.cancelled else "not cancelled")


@pytest.fixture
def client(redis_client: redis.Redis, namespace: str) -> Client:
    return Client(redis_client, namespace=namespace)


def family_keys(namespace: str, family: QueueFamily = TENANTS) -> QueueKeys:
    return QueueKeys.build(namespace, family.name, family=True)


def family_config(
    client: Client,
    job_types: list[type[Worker]],
    family: QueueFamily = TENANTS,
    settings: RunnerSettings = FAST_SETTINGS,
) -> Config:
    config = build_config(client, [], job_types, settings)
    config.register_family(family)
    return config


def texts(values: list[bytes]) -> list[str]:
    return [value.decode() for value in values]


# Declarations


@pytest.mark.parametrize("key", ["", "a b", "a[b]", "x]", "{acme}", "*", "k" * 201, 7, None])
def test_invalid_member_key_rejected(key: Any) -> None:
    with pytest.raises(ConfigurationError) as raised:
        TENANTS(key)

    assert repr(key) in str(raised.value)
    assert "'tenants'" in str(raised.value)


def test_member_name_and_family_name() -> None:
    member = TENANTS("acme-1")

    assert member.name == "tenants[acme-1]"
    assert member.family is TENANTS
    assert TENANTS.name == "tenants[*]"


def test_invalid_prefix_rejected() -> None:
    with pytest.raises(ConfigurationError, match="invalid queue name 'bad prefix'"):
        QueueFamily("bad prefix")


def test_family_and_static_queue_same_name() -> None:
    config = Config()
    config.register_queue(Queue("tenants"))
    with pytest.raises(ConfigurationError, match="already registered as a static queue"):
        config.register_family(TENANTS)

    other = Config()
    other.register_family(TENANTS)
    with pytest.raises(ConfigurationError, match="already registered as a queue family"):
        other.register_queue(Queue("tenants"))


def test_family_registered_twice_differently() -> None:
    config = Config()
    config.register_family(TENANTS)
    config.register_family(TENANTS)
    with pytest.raises(ConfigurationError, match="already registered"):
        config.register_family(QueueFamily("tenants", QueueConfig(concurrency=9)))


def test_enqueue_to_whole_family_rejected(client: Client) -> None:
    with pytest.raises(ConfigurationError, match="enqueue to one of its members"):
        client.enqueue(TENANTS, Record(label="x"))
    with pytest.raises(ConfigurationError, match="a whole queue family"):
        client.enqueue("tenants[*]", Record(label="x"))
    with pytest.raises(ConfigurationError, match="invalid queue name"):
        client.enqueue("tenants[a b]", Record(label="x"))


# Enqueue and run


def test_member_jobs_run(client: Client) -> None:
    recorder = Recorder()
    due = datetime.now(UTC) + timedelta(seconds=0.2)
    client.enqueue(TENANTS("acme"), Record(label="now"))
    client.enqueue_many(TENANTS("beta"), [Record(label="many-1"), Record(label="many-2")])
    client.enqueue_in(TENANTS("acme"), Record(label="in"), 0.2)
    client.enqueue_at(TENANTS("gamma"), Record(label="at"), due)
    client.enqueue("tenants[delta]", Record(label="by-name"))
    runner = Runner(family_config(client, [Record]), context=recorder)

    runner.drain(timeout_s=30, include_scheduled=True)

    assert sorted(recorder.events()) == [
        ("tenants[acme]", "in"),
        ("tenants[acme]", "now"),
        ("tenants[beta]", "many-1"),
        ("tenants[beta]", "many-2"),
        ("tenants[delta]", "by-name"),
        ("tenants[gamma]", "at"),
    ]
    assert client.queues() == ["tenants[*]"]


def test_member_enqueue_writes_schema(
    client: Client, redis_client: redis.Redis, namespace: str
) -> None:
    keys = family_keys(namespace)
    first = client.enqueue(TENANTS("acme"), Record(label="1"))
    second = client.enqueue(TENANTS("acme"), Record(label="2"))
    delayed = client.enqueue_in(TENANTS("beta"), Record(label="3"), 60)

    assert texts(redis_client.lrange(keys.member_ready("acme"), 0, -1)) == [second, first]
    assert texts(redis_client.lrange(keys.active, 0, -1)) == ["acme"]
    assert texts(redis_client.zrange(keys.members, 0, -1)) == ["acme", "beta"]
    assert redis_client.zscore(keys.scheduled, delayed) is not None
    assert redis_client.llen(keys.ready) == 0
    assert client.job(TENANTS("acme"), first)[("member")] == b"acme"
    assert client.job("tenants[beta]", delayed)["member"] == b"beta"


def test_static_queue_beside_family_not_captured(client: Client) -> None:
    recorder = Recorder()
    client.enqueue(Queue("tenants-x"), Record(label="static-x"))
    client.enqueue(Queue("tenants"), Record(label="static"))
    client.enqueue(TENANTS("x"), Record(label="member"))
    runner = Runner(family_config(client, [Record]), context=recorder)

    runner.drain(timeout_s=30)

    assert recorder.events() == [("tenants[x]", "member")]
    counts = {entry.queue: entry for entry in client.stats()}
    assert counts["tenants-x"].ready == 1
    assert counts["tenants"].ready == 1
    assert counts["tenants[*]"].ready == 0
    assert counts["tenants[*]"].succeeded == 1


# Fairness and limits


def test_lone_member_not_starved(client: Client) -> None:
    recorder = Recorder()
    family = QueueFamily("fair", QueueConfig(concurrency=1))
    client.enqueue_many(family("big"), [Record(label=f"big-{i}") for i in range(3000)])
    client.enqueue(family("small"), Record(label="small"))
    runner = Runner(family_config(client, [Record], family), context=recorder)

    with started(runner):
        wait_until(lambda: len(recorder) >= 5, 30, "five jobs ran")

    labels = [label for _, label in recorder.events()]
    assert "small" in labels[:3], labels[:5]


def test_members_take_turns(client: Client) -> None:
    recorder = Recorder()
    family = QueueFamily("turns", QueueConfig(concurrency=1))
    for member in ("a", "b", "c"):
        client.enqueue_many(family(member), [Record(label=f"{member}{i}") for i in range(3)])
    runner = Runner(family_config(client, [Record], family), context=recorder)

    runner.drain(timeout_s=30)

    members = [queue for queue, _ in recorder.events()]
    # Each round serves each member once, so no member runs twice in a row.
    rounds = [sorted(members[i : i + 3]) for i in range(0, 9, 3)]
    assert rounds == [["turns[a]", "turns[b]", "turns[c]"]] * 3


def test_concurrency_limit_across_members(client: Client) -> None:
    recorder = Recorder()
    family = QueueFamily("limited", QueueConfig(concurrency=3))
    for index in range(24):
        client.enqueue(family(f"m{index % 12}"), Sleep(label=str(index), seconds=0.1))
    runner = Runner(family_config(client, [Sleep], family), context=recorder)

    runner.drain(timeout_s=60)

    running, peak = 0, 0
    for event in sorted(recorder.events(), key=lambda event: (event[2], event[0] == "start")):
        running += 1 if event[0] == "start" else -1
        peak = max(peak, running)
    assert len(recorder) == 48
    assert peak <= 3
    assert peak >= 2


def test_ten_thousand_members_bounded_threads(
    client: Client, redis_client: redis.Redis, namespace: str
) -> None:
    recorder = Recorder()
    family = QueueFamily("many", QueueConfig(concurrency=8))
    members = 10_000
    for index in range(members):
        client.enqueue(family(f"tenant-{index}"), Record(label=str(index)))
    threads_before = threading.active_count()
    connections_before = len(redis_client.client_list())
    runner = Runner(family_config(client, [Record], family), context=recorder)

    peak_threads, peak_connections = 0, 0
    with started(runner):
        deadline = time.monotonic() + 120
        while len(recorder) < members and time.monotonic() < deadline:
            peak_threads = max(peak_threads, threading.active_count())
            peak_connections = max(peak_connections, len(redis_client.client_list()))
            time.sleep(0.05)

    assert len(recorder) == members
    assert len({label for _, label in recorder.events()}) == members
    # The pool's 8 threads, plus the fetcher, heartbeat, scheduler and watchdog.
    assert peak_threads - threads_before <= 8 + 4
    # One pooled connection per thread at most, plus the fetcher's blocking connection.
    assert peak_connections - connections_before <= 8 + 4 + 1
    assert client.stats([family])[0].family is not None
    assert client.stats([family])[0].family.members == members  # type: ignore[union-attr]


# Retries, scheduling, dead set, cancellation and shutdown


def test_retry_returns_to_member(client: Client) -> None:
    recorder = Recorder()
    client.enqueue(TENANTS("acme"), FailOnce(label="x"))
    runner = Runner(family_config(client, [FailOnce]), context=recorder)

    runner.drain(timeout_s=30, include_scheduled=True)

    assert recorder.events() == [("tenants[acme]", "x", 1), ("tenants[acme]", "x", 2)]


def test_due_jobs_promoted_to_member_lists(
    client: Client, redis_client: redis.Redis, namespace: str
) -> None:
    keys = family_keys(namespace)
    storage = client.storage
    scheduled = client.enqueue_in(TENANTS("late"), Record(label="s"), 0.05)
    retried = client.enqueue(TENANTS("flaky"), Record(label="r"))
    storage.heartbeat("p1", [TENANTS.name], 10_000, {"started_at": 0})
    claimed = storage.claim(TENANTS.name, "p1", 5).jobs
    failure = storage.fail_call(
        TENANTS.name,
        "p1",
        retried,
        retry_delay_ms=0,
        error={},
        claim_next=0,
        dead_max_jobs=10,
        dead_max_age_ms=60_000,
    )
    storage.finish(failure)
    assert [job.queue for job in claimed] == ["tenants[flaky]"]
    assert redis_client.llen(keys.active) == 0

    def promote() -> bool:
        storage.promote_due([TENANTS.name], 10)
        return bool(redis_client.llen(keys.active) == 2)

    wait_until(promote, 10, "both jobs are due and promoted")

    assert texts(redis_client.lrange(keys.member_ready("late"), 0, -1)) == [scheduled]
    assert texts(redis_client.lrange(keys.member_ready("flaky"), 0, -1)) == [retried]
    assert sorted(texts(redis_client.lrange(keys.active, 0, -1))) == ["flaky", "late"]


def test_dead_member_job_retried_to_member(
    client: Client, redis_client: redis.Redis, namespace: str
) -> None:
    keys = family_keys(namespace)
    job_id = client.enqueue(TENANTS("acme"), AlwaysFail())
    Runner(family_config(client, [AlwaysFail])).drain(timeout_s=30)

    dead = client.dead_jobs(TENANTS)
    assert [(job.id, job.queue) for job in dead] == [(job_id, "tenants[acme]")]
    assert [job.id for job in client.dead_jobs(TENANTS("other"))] == [job_id]

    assert client.retry_dead(TENANTS, [job_id]) == 1
    assert texts(redis_client.lrange(keys.member_ready("acme"), 0, -1)) == [job_id]
    assert texts(redis_client.lrange(keys.active, 0, -1)) == ["acme"]


def test_cancel_waiting_member_job(
    client: Client, redis_client: redis.Redis, namespace: str
) -> None:
    keys = family_keys(namespace)
    first = client.enqueue(TENANTS("acme"), Record(label="1"))
    second = client.enqueue(TENANTS("acme"), Record(label="2"))
    client.enqueue(TENANTS("beta"), Record(label="3"))

    assert client.cancel(TENANTS("acme"), first) == "cancelled"
    assert texts(redis_client.lrange(keys.active, 0, -1)) == ["beta", "acme"]
    # Any member, or the family, addresses the family's jobs.
    assert client.cancel(TENANTS, second) == "cancelled"
    assert texts(redis_client.lrange(keys.active, 0, -1)) == ["beta"]
    assert redis_client.exists(keys.member_ready("acme")) == 0
    assert client.cancel(TENANTS("acme"), second) == "not_found"


def test_cancel_running_member_job(client: Client) -> None:
    recorder = Recorder()
    job_id = client.enqueue(TENANTS("acme"), WaitForCancel())
    runner = Runner(family_config(client, [WaitForCancel]), context=recorder)

    with started(runner):
        wait_until(lambda: "started" in recorder.events(), 10, "the job starts")
        assert client.cancel(TENANTS("acme"), job_id) == "requested"
        wait_until(lambda: len(recorder) == 2, 10, "the job sees the cancellation")

    assert recorder.events() == ["started", "cancelled"]


def test_shutdown_requeues_to_member(
    client: Client, redis_client: redis.Redis, namespace: str
) -> None:
    keys = family_keys(namespace)
    recorder = Recorder()
    # Shorter than the 2 s that the thread-leak check waits for the pool thread after the test.
    job_id = client.enqueue(TENANTS("acme"), Sleep(label="long", seconds=1.2))
    settings = RunnerSettings(shutdown_timeout_s=0.2, block_timeout_s=0.5)
    runner = Runner(family_config(client, [Sleep], settings=settings), context=recorder)

    with started(runner):
        wait_until(lambda: len(recorder) == 1, 10, "the job starts")

    assert runner.stats.requeued == 1
    assert texts(redis_client.lrange(keys.member_ready("acme"), 0, -1)) == [job_id]
    assert texts(redis_client.lrange(keys.active, 0, -1)) == ["acme"]


# Retirement


def test_idle_members_retired(client: Client, redis_client: redis.Redis, namespace: str) -> None:
    keys = family_keys(namespace)
    client.enqueue(TENANTS("idle"), Record(label="1"))
    client.enqueue(TENANTS("busy"), Record(label="2"))
    storage = client.storage
    storage.heartbeat("p1", [TENANTS.name], 10_000, {"started_at": 0})
    storage.claim(TENANTS.name, "p1", 1)

    retired = storage.retire_members([(TENANTS.name, 0)], 100)

    # "idle" was at the tail of the active list, so the claim took its job and left "busy" one.
    assert retired == {TENANTS.name: ["idle"]}
    assert texts(redis_client.zrange(keys.members, 0, -1)) == ["busy"]


def test_runner_retires_idle_members(client: Client) -> None:
    recorder = Recorder()
    family = QueueFamily("retiring", QueueConfig(concurrency=2), idle_retire_s=0.5)
    for member in ("a", "b", "c"):
        client.enqueue(family(member), Record(label=member))
    runner = Runner(family_config(client, [Record], family), context=recorder)

    with started(runner):
        wait_until(lambda: len(recorder) == 3, 10, "the jobs ran")
        wait_until(
            lambda: client.stats([family])[0].family.members == 0,  # type: ignore[union-attr]
            15,
            "the idle members are retired",
        )
        client.enqueue(family("a"), Record(label="again"))
        wait_until(lambda: len(recorder) == 4, 10, "a retired member runs again")


# Several Runner processes


@pytest.fixture
def start_runner(redis_url: str, namespace: str) -> Iterator[Callable[..., RunnerProcess]]:
    """Start crash_app Runners serving the family; kill leftovers at teardown."""
    started_runners: list[RunnerProcess] = []

    def start(*options: str) -> RunnerProcess:
        args = [sys.executable, "tests/crash_app.py", redis_url, namespace, "--family", *options]
        runner = RunnerProcess(args)
        started_runners.append(runner)
        return runner

    yield start
    for runner in started_runners:
        if runner.running():
            runner.process.kill()
        runner.wait(10)


def read_events(redis_client: redis.Redis, namespace: str) -> list[dict[str, Any]]:
    return [json.loads(item) for item in redis_client.lrange(events_key(namespace), 0, -1)]


@pytest.mark.timeout(120)
def test_runner_processes_share_family(
    start_runner: Callable[..., RunnerProcess],
    client: Client,
    redis_client: redis.Redis,
    namespace: str,
) -> None:
    jobs = 2000
    for index in range(jobs):
        client.enqueue(CRASH_FAMILY(f"t{index % 50}"), CountRun(index=index, max_sleep_ms=2))
    runners = [start_runner("--concurrency", "4", "--log-level", "WARNING") for _ in range(3)]

    def runs() -> dict[bytes, bytes]:
        return redis_client.hgetall(runs_key(namespace))

    wait_until(lambda: len(runs()) == jobs, 90, "every job ran")
    wait_until(lambda: client.stats([CRASH_FAMILY])[0].running == 0, 10, "every job finished")
    for runner in runners:
        runner.signal(signal.SIGTERM)
    for runner in runners:
        assert runner.wait(30) == 0, runner.output()

    assert sorted(int(count) for count in runs().values()) == [1] * jobs
    counts = client.stats([CRASH_FAMILY])[0]
    assert counts.succeeded == jobs
    assert counts.ready == 0
    assert counts.family is not None
    assert counts.family.members == 50
    assert counts.family.active == 0


@pytest.mark.timeout(120)
def test_sigkill_reclaims_into_member_list(
    start_runner: Callable[..., RunnerProcess],
    client: Client,
    redis_client: redis.Redis,
    namespace: str,
) -> None:
    keys = family_keys(namespace, CRASH_FAMILY)
    job_id = client.enqueue(CRASH_FAMILY("acme"), Probe(tag="long", seconds=60))
    client.enqueue(CRASH_FAMILY("beta"), Probe(tag="short", seconds=0))
    victim = start_runner(*SHORT_LEASE, "--concurrency", "1")
    wait_until(
        lambda: any(event["tag"] == "long" for event in read_events(redis_client, namespace)),
        30,
        "the long job starts",
    )
    victim.kill()
    # No Runner is left to take the job, so a peer's reclaim must leave it in its member's list.
    storage = client.storage

    def reclaim() -> bool:
        storage.reclaim([CRASH_FAMILY.name], 0, 100)
        return bool(redis_client.llen(keys.member_ready("acme")) == 1)

    wait_until(reclaim, 30, "the dead Runner's lease expires and its job is reclaimed")

    assert texts(redis_client.lrange(keys.member_ready("acme"), 0, -1)) == [job_id]
    assert "acme" in texts(redis_client.lrange(keys.active, 0, -1))
    assert client.job(CRASH_FAMILY("acme"), job_id)["reclaims"] == b"1"

    client.cancel(CRASH_FAMILY("acme"), job_id)
    client.enqueue(CRASH_FAMILY("acme"), Probe(tag="after", seconds=0))
    start_runner(*SHORT_LEASE, "--concurrency", "1")

    def finished() -> dict[str, str]:
        events = read_events(redis_client, namespace)
        return {event["tag"]: event["queue"] for event in events if event["step"] == "end"}

    wait_until(lambda: len(finished()) == 2, 30, "a new Runner runs the remaining jobs")
    queues = finished()
    assert queues == {"short": "crash-tenants[beta]", "after": "crash-tenants[acme]"}


# Operator view


def test_stats_show_family(client: Client) -> None:
    client.enqueue_many(TENANTS("big"), [Record(label=str(i)) for i in range(5)])
    client.enqueue_many(TENANTS("mid"), [Record(label=str(i)) for i in range(2)])
    client.enqueue(TENANTS("small"), Record(label="s"))
    client.enqueue_in(TENANTS("later"), Record(label="l"), 60)

    whole = client.stats()
    member = client.stats([TENANTS("mid")])[0]

    assert [counts.queue for counts in whole] == ["tenants[*]"]
    assert whole[0].ready == 8
    assert whole[0].scheduled == 1
    assert whole[0].family is not None
    assert whole[0].family.members == 4
    assert whole[0].family.active == 3
    assert list(whole[0].family.biggest_backlogs.items()) == [("big", 5), ("mid", 2), ("small", 1)]
    assert member.queue == "tenants[mid]"
    assert member.ready == 2


def test_info_shows_family(client: Client, redis_url: str, namespace: str) -> None:
    client.enqueue_many(TENANTS("big"), [Record(label=str(i)) for i in range(3)])
    client.enqueue(TENANTS("small"), Record(label="s"))

    def info(*options: str) -> str:
        result = subprocess.run(
            [*INFO_COMMAND, "--url", redis_url, "--namespace", namespace, *options],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    table = info()
    document = json.loads(info("--json"))

    family_lines = [line.split() for line in table.splitlines() if line.startswith("tenants[*]")]
    assert family_lines[0][:2] == ["tenants[*]", "4"]
    assert family_lines[1] == ["tenants[*]", "2", "2", "big", "3,", "small", "1"]
    family = document["queues"][0]["family"]
    assert family == {"members": 2, "active": 2, "biggest_backlogs": {"big": 3, "small": 1}}


class UniqueRecord(Record, name="tests.families.UniqueRecord"):
    """A Record that is unique by its label and replaces a waiting job's arguments."""

    note: str = ""
    unique_conflict: ClassVar[OnConflict] = "replace"

    def unique_key(self) -> str:
        return self.label

    def process(self, ctx: Context[Recorder]) -> None:
        ctx.shared.add((ctx.meta.queue, self.label, self.note))


def test_unique_keys_scoped_by_member(client: Client) -> None:
    first = client.enqueue(TENANTS("acme"), UniqueRecord(label="sync", note="1"))
    other_member = client.enqueue(TENANTS("globex"), UniqueRecord(label="sync", note="2"))
    replaced = client.enqueue(TENANTS("acme"), UniqueRecord(label="sync", note="3"))

    assert first.created
    assert other_member.created
    assert replaced.replaced
    assert replaced == first

    recorder = Recorder()
    Runner(family_config(client, [UniqueRecord]), context=recorder).drain(timeout_s=20)
    assert sorted(recorder.events()) == [
        ("tenants[acme]", "sync", "3"),
        ("tenants[globex]", "sync", "2"),
    ]


def test_replace_makes_scheduled_member_job_ready(
    client: Client, redis_client: redis.Redis, namespace: str
) -> None:
    keys = family_keys(namespace)
    later = client.enqueue_in(TENANTS("acme"), UniqueRecord(label="sync", note="later"), 3600)
    assert redis_client.llen(keys.active) == 0

    now = client.enqueue(TENANTS("acme"), UniqueRecord(label="sync", note="now"))

    assert now.replaced
    assert now == later
    assert redis_client.lrange(keys.active, 0, -1) == [b"acme"]
    assert redis_client.lrange(keys.member_ready("acme"), 0, -1) == [later.encode()]


def test_throttle_shared_by_members(client: Client) -> None:
    family = QueueFamily(
        "throttled-tenants", QueueConfig(concurrency=4, throttle=Throttle(limit=2, window_s=0.5))
    )
    for member in ("a", "b", "c"):
        client.enqueue_many(family(member), [Record(label=f"{member}{i}") for i in range(2)])
    recorder = Recorder()
    config = family_config(client, [Record], family)

    started_at = time.monotonic()
    Runner(config, context=recorder).drain(timeout_s=20)
    elapsed_s = time.monotonic() - started_at

    # Six starts at two per half second: the last two start a full second after the first.
    assert len(recorder) == 6
    assert elapsed_s >= 1.0 - 0.05
    assert client.stats([family])[0].throttle is not None
