"""Throttling: at most N job starts per sliding window, shared by every Runner of a queue."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from oxanus_sync import (
    Client,
    ConfigurationError,
    Context,
    Queue,
    QueueConfig,
    Runner,
    Throttle,
    Worker,
)
from oxanus_sync.storage.keys import QueueKeys
from tests.crash_app import QUEUE_NAME as CRASH_QUEUE
from tests.crash_app import StampStart, starts_key
from tests.helpers import Recorder, RunnerProcess, build_config, started, wait_until

# Time between a job's admission by the throttle and the moment it records its start: the
# claim reply, the hand-off to a pool thread and one TIME round trip. Windows are checked
# shortened by this much, so a slow hand-off cannot make a correct throttle look wrong.
START_DELAY_TOLERANCE_MS = 100


class ServerStamp(Worker, name="tests.throttle.ServerStamp"):
    """Records the Redis server's time in ms at its start."""

    index: int

    def process(self, ctx: Context[tuple[Recorder, redis.Redis]]) -> None:
        recorder, connection = ctx.shared
        seconds, microseconds = connection.time()
        recorder.add(seconds * 1000 + microseconds // 1000)


@pytest.fixture
def client(redis_url: str, namespace: str) -> Iterator[Client]:
    client = Client.from_url(redis_url, namespace=namespace)
    yield client
    client.close()


def max_starts_in_window(starts_ms: list[int], window_ms: int) -> int:
    """Return the largest number of starts inside any half-open interval of `window_ms`."""
    ordered = sorted(starts_ms)
    most, first = 0, 0
    for last, start in enumerate(ordered):
        while start - ordered[first] >= window_ms:
            first += 1
        most = max(most, last - first + 1)
    return most


def test_max_starts_in_window_counts() -> None:
    assert max_starts_in_window([0, 10, 20, 1020, 1021], 1000) == 3
    assert max_starts_in_window([0, 999, 1000], 1000) == 2
    assert max_starts_in_window([], 1000) == 0


@pytest.mark.parametrize(
    ("limit", "window_s", "message"),
    [
        (0, 1.0, "throttle limit must be an integer of at least 1, got 0"),
        (2.5, 1.0, "throttle limit must be an integer of at least 1, got 2.5"),
        (1, 0.0, "throttle window_s must be a number from 0.001 to 604800, got 0.0"),
        (1, 700000.0, "throttle window_s must be a number from 0.001 to 604800"),
    ],
)
def test_invalid_throttle_rejected(limit: object, window_s: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Throttle(limit=limit, window_s=window_s)  # type: ignore[arg-type]


def test_queue_config_rejects_non_throttle() -> None:
    with pytest.raises(ConfigurationError, match="throttle must be a Throttle or None, got 5"):
        QueueConfig(throttle=5)  # type: ignore[arg-type]


def run_stamps(client: Client, queue: Queue, jobs: int, redis_client: redis.Redis) -> list[int]:
    """Run `jobs` ServerStamp jobs on one in-process Runner; return their start times."""
    client.enqueue_many(queue, [ServerStamp(index=i) for i in range(jobs)])
    recorder = Recorder()
    config = build_config(client, [queue], [ServerStamp])
    with started(Runner(config, context=(recorder, redis_client))):
        wait_until(lambda: len(recorder) == jobs, 30, f"{jobs} jobs started")
    return list(recorder.events())


@pytest.mark.timeout(60)
def test_window_never_exceeds_limit(client: Client, redis_client: redis.Redis) -> None:
    throttle = Throttle(limit=3, window_s=0.5)
    queue = Queue("throttled", QueueConfig(concurrency=8, throttle=throttle))

    starts = run_stamps(client, queue, 12, redis_client)

    window = throttle.window_ms - START_DELAY_TOLERANCE_MS
    assert max_starts_in_window(starts, window) <= 3
    # Twelve starts at three per window need at least three full windows after the first.
    assert max(starts) - min(starts) >= 3 * throttle.window_ms - START_DELAY_TOLERANCE_MS


def test_stats_show_throttle_state(client: Client, redis_client: redis.Redis) -> None:
    throttle = Throttle(limit=5, window_s=3600.0)
    queue = Queue("throttled-stats", QueueConfig(concurrency=2, throttle=throttle))

    run_stamps(client, queue, 5, redis_client)

    state = client.stats([queue])[0].throttle
    assert state is not None
    assert state.limit == 5
    assert state.window_ms == 3_600_000
    assert state.used == 5
    assert 3_500_000 < state.next_start_ms <= 3_600_000
    assert client.stats([Queue("not-throttled")])[0].throttle is None


@pytest.mark.timeout(60)
def test_sub_second_window(client: Client, redis_client: redis.Redis) -> None:
    throttle = Throttle(limit=1, window_s=0.2)
    queue = Queue("throttled-fast", QueueConfig(concurrency=4, throttle=throttle))

    starts = sorted(run_stamps(client, queue, 6, redis_client))

    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert min(gaps) >= throttle.window_ms - START_DELAY_TOLERANCE_MS / 2
    assert max_starts_in_window(starts, throttle.window_ms - START_DELAY_TOLERANCE_MS) == 1


class ClaimCounter:
    """Counts claim script calls on one queue with MONITOR, in a background thread."""

    def __init__(self, redis_url: str, ready_key: str) -> None:
        self.count = 0
        self._ready_key = ready_key
        self._connection = redis.Redis.from_url(redis_url, socket_timeout=10)
        self._monitor = self._connection.monitor()
        self._monitor.__enter__()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                words = self._monitor.next_command()["command"].split(" ")
            except (redis.RedisError, OSError):
                return
            # claim.lua is the only script with four keys whose first key is the ready list.
            if words[0].upper() == "EVALSHA" and words[2:4] == ["4", self._ready_key]:
                self.count += 1

    def stop(self) -> None:
        self._stop.set()
        self._connection.close()
        self._thread.join(timeout=10)


@pytest.mark.timeout(60)
def test_throttled_fetcher_sleeps_until_next_slot(
    client: Client, redis_client: redis.Redis, redis_url: str, namespace: str
) -> None:
    throttle = Throttle(limit=2, window_s=1.0)
    queue = Queue("throttled-sleep", QueueConfig(concurrency=2, throttle=throttle))
    counter = ClaimCounter(redis_url, QueueKeys.build(namespace, queue.name).ready)
    try:
        started_at = time.monotonic()
        starts = run_stamps(client, queue, 8, redis_client)
        elapsed_s = time.monotonic() - started_at
    finally:
        counter.stop()

    # Eight starts at two per second: the last starts three windows after the first. An
    # oversleeping fetcher would need up to twice that.
    assert max(starts) - min(starts) >= 3000 - START_DELAY_TOLERANCE_MS
    assert elapsed_s < 3.0 + 1.5
    # One claim per window slot plus a few around the edges; a fetcher polling every 100 ms
    # would make about 30.
    assert counter.count >= 4
    assert counter.count <= 12


@pytest.mark.timeout(90)
def test_limit_shared_by_runner_processes(
    start_runner: Callable[..., RunnerProcess],
    client: Client,
    redis_client: redis.Redis,
    namespace: str,
) -> None:
    limit, window_s, jobs = 4, 1.0, 24
    client.enqueue_many(CRASH_QUEUE, [StampStart(index=i) for i in range(jobs)])
    runners = [
        start_runner("--concurrency", "4", "--throttle", str(limit), str(window_s))
        for _ in range(3)
    ]

    wait_until(lambda: redis_client.llen(starts_key(namespace)) == jobs, 60, f"{jobs} jobs started")
    starts = [int(value) for value in redis_client.lrange(starts_key(namespace), 0, -1)]

    assert all(runner.running() for runner in runners)
    window_ms = round(window_s * 1000)
    assert max_starts_in_window(starts, window_ms - START_DELAY_TOLERANCE_MS) <= limit
    assert max(starts) - min(starts) >= (jobs // limit - 1) * window_ms - START_DELAY_TOLERANCE_MS
