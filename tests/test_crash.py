"""Crash recovery with real Runner processes killed, stopped or terminated at awkward moments.

The tests check in Redis where every job ended up: acknowledged once, back in its queue, or in
the dead set with a reason. Most tests run the Runners of tests/crash_app.py with a 1 s lease
and a 0.25 s heartbeat so that a dead Runner's jobs come back quickly. One test keeps the
defaults to check the documented recovery bound.
"""

from __future__ import annotations

import json
import random
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from oxanus_sync import Client
from oxanus_sync.storage.keys import QueueKeys
from oxanus_sync.storage.store import Storage
from tests.crash_app import (
    QUEUE_NAME,
    CountRun,
    FailThenHang,
    KillOwnProcess,
    Probe,
    events_key,
    runs_key,
)
from tests.helpers import RunnerProcess, wait_until

# A Runner's jobs come back 1 to 1.25 s after its last heartbeat with these options.
SHORT_LEASE = ["--lease", "1.0", "--heartbeat", "0.25"]

# Default RunnerSettings: lease_s 5 plus heartbeat_interval_s 1 bound the time from a Runner's
# last heartbeat to the reclaim of its jobs; 10 s leaves room for process start and polling.
DEFAULT_RECOVERY_LIMIT_S = 10.0

CHAOS_JOBS = 3000
CHAOS_RUNNERS = 3
CHAOS_SEED = 20240611
# CountRun jobs sleep up to this long: 3,000 jobs at 50 ms on average keep 12 threads busy for
# about 12.5 s, longer than the 15 to 20 kills at 0.3 to 1.0 s intervals take (about 11 s).
CHAOS_MAX_SLEEP_MS = 100


@pytest.fixture
def client(redis_client: redis.Redis, namespace: str) -> Client:
    return Client(redis_client, namespace=namespace)


@pytest.fixture
def keys(namespace: str) -> QueueKeys:
    return QueueKeys.build(namespace, QUEUE_NAME)


def read_events(redis_client: redis.Redis, namespace: str) -> list[dict[str, Any]]:
    return [json.loads(item) for item in redis_client.lrange(events_key(namespace), 0, -1)]


def events_of(
    redis_client: redis.Redis, namespace: str, tag: str, step: str
) -> list[dict[str, Any]]:
    events = read_events(redis_client, namespace)
    return [event for event in events if event["tag"] == tag and event["step"] == step]


def read_runs(redis_client: redis.Redis, namespace: str) -> dict[int, int]:
    """Return job index -> how many times a CountRun job with that index started."""
    raw = redis_client.hgetall(runs_key(namespace))
    return {int(index): int(count) for index, count in raw.items()}


def ready_ids(redis_client: redis.Redis, keys: QueueKeys) -> list[str]:
    return [item.decode() for item in redis_client.lrange(keys.ready, 0, -1)]


def processing_ids(redis_client: redis.Redis, keys: QueueKeys) -> list[str]:
    """Return the ids in every processing list of the queue, of live and dead processes."""
    return [
        item.decode()
        for key in redis_client.scan_iter(match=keys.processing_prefix + "*")
        for item in redis_client.lrange(key, 0, -1)
    ]


def existing_ids(redis_client: redis.Redis, keys: QueueKeys, job_ids: list[str]) -> list[str]:
    """Return the ids among `job_ids` whose job hash still exists."""
    pipe = redis_client.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.exists(keys.job(job_id))
    found = pipe.execute()
    return [job_id for job_id, exists in zip(job_ids, found, strict=True) if exists]


# SIGKILL under load


@pytest.mark.timeout(240)
def test_chaos_kills_lose_nothing(
    start_runner: Callable[..., RunnerProcess],
    client: Client,
    keys: QueueKeys,
    redis_client: redis.Redis,
    namespace: str,
) -> None:
    jobs = [CountRun(index=i, max_sleep_ms=CHAOS_MAX_SLEEP_MS) for i in range(CHAOS_JOBS)]
    job_ids = client.enqueue_many(QUEUE_NAME, jobs)
    # Every kill takes back the killed Runner's jobs and adds 1 to their reclaims. A job caught
    # in 6 kills would go dead at the default max_reclaims of 5, so the limit is raised to rule
    # that out: this test is about jobs lost, not about the reclaim limit.
    options = [
        *SHORT_LEASE,
        "--concurrency",
        "4",
        "--max-reclaims",
        "1000",
        "--log-level",
        "WARNING",
    ]
    live = [start_runner(*options) for _ in range(CHAOS_RUNNERS)]

    rng = random.Random(CHAOS_SEED)
    kills = rng.randint(15, 20)
    succeeded_at_kill = []
    for _ in range(kills):
        time.sleep(rng.uniform(0.3, 1.0))  # pacing of the kills, not a wait for a condition
        victim = live.pop(rng.randrange(len(live)))
        victim.kill()
        live.append(start_runner(*options))
        succeeded_at_kill.append(client.stats([QUEUE_NAME])[0].succeeded)

    def finished() -> bool:
        counts = client.stats([QUEUE_NAME])[0]
        return (
            len(read_runs(redis_client, namespace)) == CHAOS_JOBS
            and counts.ready == 0
            and counts.scheduled == 0
            and counts.retry == 0
            and not processing_ids(redis_client, keys)
            and counts.succeeded == CHAOS_JOBS
        )

    wait_until(finished, 120, f"all {CHAOS_JOBS} jobs finished after {kills} kills")

    runs = read_runs(redis_client, namespace)
    counts = client.stats([QUEUE_NAME])[0]
    repeated = sum(1 for count in runs.values() if count >= 2)
    summary = (
        f"{kills} SIGKILLs (seed {CHAOS_SEED}), succeeded counts at each kill "
        f"{succeeded_at_kill}: {repeated} of {CHAOS_JOBS} jobs ran twice or more, "
        f"max runs of one job {max(runs.values())}"
    )
    print(f"\nchaos: {summary}")

    never_ran = [index for index in range(CHAOS_JOBS) if runs.get(index, 0) < 1]
    assert never_ran == [], summary
    assert counts.succeeded == CHAOS_JOBS, summary
    assert counts.dead == 0, summary
    assert counts.dead_total == 0, summary
    assert existing_ids(redis_client, keys, job_ids) == [], summary


@pytest.mark.timeout(40)
def test_default_lease_reruns_within_bound(
    start_runner: Callable[..., RunnerProcess],
    client: Client,
    redis_client: redis.Redis,
    namespace: str,
) -> None:
    job_id = client.enqueue(QUEUE_NAME, Probe(tag="victim", seconds=2.0))
    doomed = start_runner()
    wait_until(lambda: events_of(redis_client, namespace, "victim", "start"), 10, "the job started")

    doomed.kill()
    killed_at = time.monotonic()
    start_runner()
    wait_until(
        lambda: len(events_of(redis_client, namespace, "victim", "start")) == 2,
        20,
        "the job started again in the second Runner",
    )
    rerun_after_s = time.monotonic() - killed_at

    first, rerun = events_of(redis_client, namespace, "victim", "start")
    assert rerun_after_s < DEFAULT_RECOVERY_LIMIT_S
    assert first["pid"] == doomed.pid
    assert first["reclaims"] == 0
    assert rerun["pid"] != doomed.pid
    assert rerun["reclaims"] == 1
    assert rerun["attempt"] == 1

    wait_until(lambda: client.job(QUEUE_NAME, job_id) == {}, 10, "the rerun was acknowledged")
    assert client.stats([QUEUE_NAME])[0].succeeded == 1


@pytest.mark.timeout(40)
def test_reclaim_keeps_attempt_count(
    start_runner: Callable[..., RunnerProcess],
    client: Client,
    redis_client: redis.Redis,
    namespace: str,
) -> None:
    # Attempt 1 fails, attempt 2 hangs until its Runner is killed, then the rerun of attempt 2
    # and attempt 3 fail. FailThenHang allows 2 retries, so attempt 3 is the last.
    job = FailThenHang(tag="flaky", hang_attempt=2, hang_s=30.0)
    job_id = client.enqueue(QUEUE_NAME, job)
    doomed = start_runner(*SHORT_LEASE)
    wait_until(
        lambda: len(events_of(redis_client, namespace, "flaky", "start")) == 2,
        10,
        "attempt 2 started",
    )

    doomed.kill()
    start_runner(*SHORT_LEASE)
    wait_until(lambda: client.dead_jobs(QUEUE_NAME), 15, "the job went dead")

    starts = events_of(redis_client, namespace, "flaky", "start")
    seen = [(event["attempt"], event["reclaims"]) for event in starts]
    assert seen == [(1, 0), (2, 0), (2, 1), (3, 1)]
    dead = client.dead_jobs(QUEUE_NAME)
    assert [entry.id for entry in dead] == [job_id]
    assert dead[0].attempt == 3


# SIGSTOP: a Runner that stalls past its lease


def stall_until_reclaimed(
    start_runner: Callable[..., RunnerProcess],
    client: Client,
    redis_client: redis.Redis,
    namespace: str,
) -> tuple[RunnerProcess, RunnerProcess, str]:
    """Stop a Runner with SIGSTOP while it runs a 3 s job, until a peer reruns the job.

    Returns the stalled Runner (continued again), the peer and the job id, once the stalled
    Runner's attempt ended and the peer's run was acknowledged.
    """
    job_id = client.enqueue(QUEUE_NAME, Probe(tag="slow", seconds=3.0))
    stalled = start_runner(*SHORT_LEASE)
    wait_until(lambda: events_of(redis_client, namespace, "slow", "start"), 10, "the job started")
    peer = start_runner(*SHORT_LEASE)
    wait_until(lambda: len(client.processes()) == 2, 10, "the peer Runner registered")

    stalled.signal(signal.SIGSTOP)
    try:
        wait_until(
            lambda: len(events_of(redis_client, namespace, "slow", "start")) == 2,
            15,
            "the peer took the job back and started it",
        )
    finally:
        stalled.signal(signal.SIGCONT)

    wait_until(
        lambda: len(events_of(redis_client, namespace, "slow", "end")) == 2,
        15,
        "both runs of the job ended",
    )
    wait_until(lambda: client.job(QUEUE_NAME, job_id) == {}, 10, "the peer's run was recorded")
    return stalled, peer, job_id


@pytest.mark.timeout(60)
def test_stalled_runner_result_discarded(
    start_runner: Callable[..., RunnerProcess],
    client: Client,
    redis_client: redis.Redis,
    namespace: str,
) -> None:
    stalled, peer, _ = stall_until_reclaimed(start_runner, client, redis_client, namespace)
    wait_until(lambda: "discarded" in stalled.output(), 10, "the stalled Runner logged a discard")

    starts = events_of(redis_client, namespace, "slow", "start")
    counts = client.stats([QUEUE_NAME])[0]
    assert [event["pid"] for event in starts] == [stalled.pid, peer.pid]
    assert starts[1]["reclaims"] == 1
    assert counts.succeeded == 1
    assert counts.processed == 1
    assert "job result discarded" in stalled.output()

    peer.signal(signal.SIGTERM)
    assert peer.wait(10) == 0, peer.output()
    client.enqueue(QUEUE_NAME, Probe(tag="after", seconds=0.0))
    wait_until(
        lambda: events_of(redis_client, namespace, "after", "end"),
        10,
        "the stalled Runner ran a new job",
    )
    assert events_of(redis_client, namespace, "after", "end")[0]["pid"] == stalled.pid
    assert stalled.running()


@pytest.mark.timeout(60)
def test_stalled_runner_logs_lost_lease(
    start_runner: Callable[..., RunnerProcess],
    client: Client,
    redis_client: redis.Redis,
    namespace: str,
) -> None:
    stalled, _, _ = stall_until_reclaimed(start_runner, client, redis_client, namespace)
    wait_until(lambda: "discarded" in stalled.output(), 10, "the stalled Runner logged a discard")

    assert f"lease on queue {QUEUE_NAME} was lost" in stalled.output()


# Storage.reclaim called by many clients at once


@pytest.mark.timeout(60)
def test_concurrent_reclaim_moves_each_job_once(
    client: Client,
    keys: QueueKeys,
    redis_client: redis.Redis,
    redis_url: str,
    namespace: str,
) -> None:
    job_ids = client.enqueue_many(QUEUE_NAME, [CountRun(index=i) for i in range(500)])
    dead_processing = keys.processing("deadproc")
    pipe = redis_client.pipeline(transaction=False)
    for _ in job_ids:
        pipe.lmove(keys.ready, dead_processing, "RIGHT", "LEFT")
    pipe.execute()
    expired_at_ms = client.server_time_ms() - 1000
    redis_client.zadd(keys.leases, {"deadproc": expired_at_ms})
    assert redis_client.llen(dead_processing) == 500

    threads = 8
    barrier = threading.Barrier(threads)
    returned: list[list[str]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []

    def reclaim_all(slot: int) -> None:
        connection = redis.Redis.from_url(redis_url)
        storage = Storage(connection, namespace)
        try:
            barrier.wait(timeout=10)
            # A small limit makes the threads take turns through many script calls.
            while moved := storage.reclaim([QUEUE_NAME], 60_000, 7).get(QUEUE_NAME, []):
                returned[slot].extend(moved)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    workers = [threading.Thread(target=reclaim_all, args=(slot,)) for slot in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)

    union = [job_id for moved in returned for job_id in moved]
    ready = ready_ids(redis_client, keys)
    pipe = redis_client.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.hget(keys.job(job_id), "reclaims")
    reclaims = [int(value) for value in pipe.execute()]
    assert errors == []
    assert len(union) == 500
    assert set(union) == set(job_ids)
    assert len(ready) == 500
    assert set(ready) == set(job_ids)
    assert redis_client.llen(dead_processing) == 0
    assert reclaims == [1] * 500


# A job that kills its own Runner


@pytest.mark.timeout(60)
def test_poison_job_dead_after_max_reclaims(
    start_runner: Callable[..., RunnerProcess],
    client: Client,
    redis_client: redis.Redis,
    namespace: str,
) -> None:
    job_id = client.enqueue(QUEUE_NAME, KillOwnProcess(tag="poison"))
    options = [*SHORT_LEASE, "--max-reclaims", "2"]

    deaths: list[int | None] = []
    runner = start_runner(*options)
    # The job kills Runners 1 to 3; the 4th finds it reclaimed 3 times, over the limit of 2.
    for _ in range(5):
        wait_until(
            lambda current=runner: not current.running() or client.dead_jobs(QUEUE_NAME),
            15,
            "the Runner died or the job went dead",
        )
        if runner.running():
            break
        deaths.append(runner.process.returncode)
        runner = start_runner(*options)

    dead = client.dead_jobs(QUEUE_NAME)
    starts = events_of(redis_client, namespace, "poison", "start")
    assert deaths == [-signal.SIGKILL] * 3
    assert [event["reclaims"] for event in starts] == [0, 1, 2]
    assert [entry.id for entry in dead] == [job_id]
    assert dead[0].error is not None
    assert "taken back" in dead[0].error["message"]
    assert runner.running()

    runner.signal(signal.SIGTERM)
    assert runner.wait(10) == 0, runner.output()


# SIGTERM at random moments


@pytest.mark.timeout(120)
def test_sigterm_after_claim_loses_nothing(
    start_runner: Callable[..., RunnerProcess],
    client: Client,
    keys: QueueKeys,
    redis_client: redis.Redis,
    namespace: str,
) -> None:
    rng = random.Random(7)
    enqueued: list[str] = []
    for iteration in range(20):
        if redis_client.llen(keys.ready) < 500:
            start = len(enqueued)
            batch = [CountRun(index=start + i, max_sleep_ms=5) for i in range(1000)]
            enqueued += client.enqueue_many(QUEUE_NAME, batch)

        processed_before = client.stats([QUEUE_NAME])[0].processed
        runner = start_runner("--concurrency", "4", "--log-level", "WARNING")
        wait_until(
            lambda before=processed_before: client.stats([QUEUE_NAME])[0].processed > before,
            10,
            f"a job finished in iteration {iteration}",
        )
        time.sleep(rng.uniform(0, 0.05))  # a random moment in the Runner's work
        runner.signal(signal.SIGTERM)
        code = runner.wait(15)

        ready = ready_ids(redis_client, keys)
        remaining = set(existing_ids(redis_client, keys, enqueued))
        done = [job_id for job_id in enqueued if job_id not in remaining]
        done_indexes = {index for index, job_id in enumerate(enqueued) if job_id not in remaining}
        runs = read_runs(redis_client, namespace)
        counts = client.stats([QUEUE_NAME])[0]
        where = f"iteration {iteration}"
        assert code == 0, f"{where}: {runner.output()}"
        assert processing_ids(redis_client, keys) == [], where
        assert len(ready) == len(set(ready)), where
        assert set(ready) == remaining, where
        assert len(done) + len(ready) == len(enqueued), where
        assert counts.succeeded == len(done), where
        assert counts.scheduled + counts.retry + counts.dead == 0, where
        assert set(runs) == done_indexes, where
