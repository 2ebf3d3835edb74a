"""Retries: attempts, the dead set after the last retry, retry_on, RetryLater and backoff."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from oxanus_sync import (
    Client,
    ConfigurationError,
    Context,
    Queue,
    QueueConfig,
    RetryLater,
    RetryPolicy,
    Runner,
    RunnerStats,
    Worker,
)
from oxanus_sync.storage.keys import QueueKeys
from tests.helpers import Recorder, build_config

# The default RetryPolicy waits about 1 s before the first retry, so the job types here set
# their own delay, raise RetryLater, or run on a queue with a shorter policy.
QUEUE = Queue("default", QueueConfig(concurrency=2, retry=RetryPolicy(max_retries=3)))


def explode_with_runtime_error(message: str) -> None:
    raise RuntimeError(message)


class FailTwice(Worker):
    def retry_delay(self, attempt: int) -> float | None:
        return 0

    def process(self, ctx: Context[Recorder]) -> None:
        ctx.shared.add(ctx.meta.attempt)
        if ctx.meta.attempt <= 2:
            raise RuntimeError(f"attempt {ctx.meta.attempt} fails")


class AlwaysFail(Worker):
    max_retries = 2

    def retry_delay(self, attempt: int) -> float | None:
        return 0

    def process(self, ctx: Context[Recorder]) -> None:
        ctx.shared.add(ctx.meta.attempt)
        explode_with_runtime_error("the disk is full")


class OnlyValueErrors(Worker):
    retry_on = (ValueError,)
    kind: str

    def retry_delay(self, attempt: int) -> float | None:
        return 0

    def process(self, ctx: Context[Recorder]) -> None:
        ctx.shared.add(ctx.meta.attempt)
        if ctx.meta.attempt > 1:
            return
        if self.kind == "type":
            raise TypeError("not retried")
        if self.kind == "unicode":
            raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "a ValueError subclass")
        raise ValueError("retried")


class AskToRetryLater(Worker):
    delay_s: float

    def process(self, ctx: Context[Recorder]) -> None:
        ctx.shared.add((ctx.meta.attempt, time.time()))
        if ctx.meta.attempt == 1:
            raise RetryLater(delay_s=self.delay_s, reason="the rate limit resets soon")


class AlwaysRetryLater(Worker):
    max_retries = 1

    def process(self, ctx: Context[Recorder]) -> None:
        ctx.shared.add(ctx.meta.attempt)
        raise RetryLater(delay_s=0)


class CallsExit(Worker):
    def process(self, ctx: Context[Recorder]) -> None:
        ctx.shared.add(ctx.meta.attempt)
        sys.exit(3)


class NoRetries(Worker):
    max_retries = 0

    def process(self, ctx: Context[Recorder]) -> None:
        ctx.shared.add(ctx.meta.attempt)
        raise RuntimeError("fails once")


class QueueBackoff(Worker):
    def process(self, ctx: Context[Recorder]) -> None:
        ctx.shared.add(ctx.meta.attempt)
        raise RuntimeError("waits for the queue's backoff")


class NonFiniteRetryLater(Worker):
    # JSON cannot store inf or nan, so the delay travels as text such as "inf".
    delay: str

    def process(self, ctx: Context[Recorder]) -> None:
        ctx.shared.add(ctx.meta.attempt)
        raise RetryLater(delay_s=float(self.delay))


class BrokenRetryDelay(Worker):
    def retry_delay(self, attempt: int) -> float | None:
        raise ZeroDivisionError("retry_delay is broken")

    def process(self, ctx: Context[Recorder]) -> None:
        ctx.shared.add(ctx.meta.attempt)
        if ctx.meta.attempt == 1:
            raise RuntimeError("first attempt fails")


@pytest.fixture
def client(redis_url: str, namespace: str) -> Iterator[Client]:
    client = Client.from_url(redis_url, namespace=namespace)
    yield client
    client.close()


def _drain(
    client: Client, job_type: type[Worker], recorder: Recorder, queue: Queue = QUEUE
) -> RunnerStats:
    runner = Runner(build_config(client, [queue], [job_type]), context=recorder)
    return runner.drain(timeout_s=20, include_scheduled=True)


def test_fail_twice_then_succeed(client: Client) -> None:
    recorder = Recorder()

    client.enqueue(QUEUE, FailTwice())
    stats = _drain(client, FailTwice, recorder)

    assert len(recorder) == 3
    assert stats.succeeded == 1
    assert stats.retried == 2
    assert stats.dead == 0
    [counts] = client.stats([QUEUE])
    assert counts.retried == 2
    assert counts.succeeded == 1
    assert counts.dead == 0


def test_attempt_grows_across_retries(client: Client) -> None:
    recorder = Recorder()

    client.enqueue(QUEUE, AlwaysFail())
    _drain(client, AlwaysFail, recorder)

    assert recorder.events() == [1, 2, 3]


def test_always_failing_job_goes_dead(client: Client) -> None:
    recorder = Recorder()

    job_id = client.enqueue(QUEUE, AlwaysFail())
    stats = _drain(client, AlwaysFail, recorder)

    assert len(recorder) == 3
    assert stats.retried == 2
    assert stats.dead == 1
    [dead] = client.dead_jobs(QUEUE)
    assert dead.id == job_id
    assert dead.attempt == 3
    assert dead.dead_at_ms is not None


def test_dead_job_keeps_error(client: Client) -> None:
    client.enqueue(QUEUE, AlwaysFail())
    _drain(client, AlwaysFail, Recorder())

    [dead] = client.dead_jobs(QUEUE)
    error = dead.error
    assert error is not None
    assert error["type"] == "builtins.RuntimeError"
    assert error["message"] == "the disk is full"
    assert "Traceback" in error["traceback"]
    assert "explode_with_runtime_error" in error["traceback"]
    assert error["attempt"] == 3


def test_max_retries_zero_dies_at_once(client: Client) -> None:
    recorder = Recorder()

    client.enqueue(QUEUE, NoRetries())
    stats = _drain(client, NoRetries, recorder)

    assert recorder.events() == [1]
    assert stats.retried == 0
    assert stats.dead == 1


def test_queue_policy_sets_retry_count(client: Client) -> None:
    queue = Queue("policy", QueueConfig(retry=RetryPolicy(max_retries=1, base_delay_s=0)))
    recorder = Recorder()

    client.enqueue(queue, QueueBackoff())
    stats = _drain(client, QueueBackoff, recorder, queue)

    assert recorder.events() == [1, 2]
    assert stats.dead == 1


def test_retry_on_excludes_other_errors(client: Client) -> None:
    recorder = Recorder()

    client.enqueue(QUEUE, OnlyValueErrors(kind="type"))
    stats = _drain(client, OnlyValueErrors, recorder)

    assert recorder.events() == [1]
    assert stats.retried == 0
    assert stats.dead == 1
    [dead] = client.dead_jobs(QUEUE)
    assert dead.error is not None
    assert dead.error["type"] == "builtins.TypeError"


@pytest.mark.parametrize("kind", ["value", "unicode"])
def test_retry_on_retries_listed_errors(client: Client, kind: str) -> None:
    recorder = Recorder()

    client.enqueue(QUEUE, OnlyValueErrors(kind=kind))
    stats = _drain(client, OnlyValueErrors, recorder)

    assert recorder.events() == [1, 2]
    assert stats.retried == 1
    assert stats.succeeded == 1


def test_system_exit_goes_dead(client: Client) -> None:
    recorder = Recorder()

    client.enqueue(QUEUE, CallsExit())
    stats = _drain(client, CallsExit, recorder)

    assert recorder.events() == [1]
    assert stats.dead == 1
    [dead] = client.dead_jobs(QUEUE)
    assert dead.error is not None
    assert dead.error["type"] == "builtins.SystemExit"


def test_retry_later_waits_for_delay(client: Client) -> None:
    recorder = Recorder()
    delay_s = 0.5
    # Both attempts read this host's clock; the tolerance covers rounding to milliseconds.
    tolerance_s = 0.05

    client.enqueue(QUEUE, AskToRetryLater(delay_s=delay_s))
    stats = _drain(client, AskToRetryLater, recorder)

    [(first_attempt, first_start), (second_attempt, second_start)] = recorder.events()
    assert first_attempt == 1
    assert second_attempt == 2
    assert second_start - first_start >= delay_s - tolerance_s
    assert stats.retried == 1
    assert stats.succeeded == 1


def test_retry_later_sets_due_time(client: Client) -> None:
    queue = Queue("later", QueueConfig(retry=RetryPolicy(max_retries=3)))
    keys = QueueKeys.build(client.namespace, queue.name)
    delay_s = 30.0

    job_id = client.enqueue(queue, AskToRetryLater(delay_s=delay_s))
    runner = Runner(build_config(client, [queue], [AskToRetryLater]), context=Recorder())
    stats = runner.drain(timeout_s=10)
    now_ms = client.storage.server_time_ms()

    due_ms = client.redis.zscore(keys.retry, job_id)
    assert stats.retried == 1
    assert due_ms is not None
    assert due_ms > now_ms + (delay_s - 5) * 1000
    assert due_ms <= now_ms + delay_s * 1000
    [counts] = client.stats([queue])
    assert counts.retry == 1
    assert counts.ready == 0


def test_retry_later_error_kept(client: Client) -> None:
    queue = Queue("later", QueueConfig(retry=RetryPolicy(max_retries=3)))

    job_id = client.enqueue(queue, AskToRetryLater(delay_s=60))
    Runner(build_config(client, [queue], [AskToRetryLater]), context=Recorder()).drain(timeout_s=10)

    fields = client.job(queue, job_id)
    assert fields["attempt"] == b"1"
    assert b"the rate limit resets soon" in fields["error"]


def test_retry_later_counts_against_limit(client: Client) -> None:
    recorder = Recorder()

    client.enqueue(QUEUE, AlwaysRetryLater())
    stats = _drain(client, AlwaysRetryLater, recorder)

    assert recorder.events() == [1, 2]
    assert stats.retried == 1
    assert stats.dead == 1


@pytest.mark.parametrize("delay", ["inf", "nan"])
def test_retry_later_non_finite_delay(client: Client, delay: str) -> None:
    queue = Queue("non-finite", QueueConfig(retry=RetryPolicy(max_retries=1, base_delay_s=0)))
    recorder = Recorder()

    client.enqueue(queue, NonFiniteRetryLater(delay=delay))
    Runner(build_config(client, [queue], [NonFiniteRetryLater]), context=recorder).drain(
        timeout_s=3
    )

    [counts] = client.stats([queue])
    assert counts.running == 0
    assert counts.retry + counts.dead == 1


def test_broken_retry_delay_not_stuck(client: Client) -> None:
    queue = Queue("fallback", QueueConfig(retry=RetryPolicy(max_retries=3, base_delay_s=0)))
    recorder = Recorder()

    client.enqueue(queue, BrokenRetryDelay())
    config = build_config(client, [queue], [BrokenRetryDelay])
    Runner(config, context=recorder).drain(timeout_s=3, include_scheduled=True)

    [counts] = client.stats([queue])
    assert counts.running == 0
    assert counts.succeeded + counts.dead == 1


def test_default_backoff_uses_queue_policy(client: Client) -> None:
    policy = RetryPolicy(max_retries=3, base_delay_s=20, factor=2, jitter=0.2)
    queue = Queue("backoff", QueueConfig(retry=policy))
    keys = QueueKeys.build(client.namespace, queue.name)

    job_id = client.enqueue(queue, QueueBackoff())
    Runner(build_config(client, [queue], [QueueBackoff]), context=Recorder()).drain(timeout_s=10)
    now_ms = client.storage.server_time_ms()

    due_ms = client.redis.zscore(keys.retry, job_id)
    assert due_ms is not None
    # The first retry waits base_delay_s, give or take 20 % of jitter.
    assert due_ms >= now_ms + 20_000 * 0.8 - 5_000
    assert due_ms <= now_ms + 20_000 * 1.2


# RetryPolicy.delay_s

SAMPLES = 400


@pytest.mark.parametrize("attempt", range(1, 9))
def test_delay_within_jitter_bounds(attempt: int) -> None:
    policy = RetryPolicy(base_delay_s=0.5, factor=3.0, max_delay_s=10_000, jitter=0.25)
    nominal = 0.5 * 3.0 ** (attempt - 1)

    delays = [policy.delay_s(attempt) for _ in range(SAMPLES)]

    assert min(delays) >= nominal * 0.75
    assert max(delays) <= nominal * 1.25
    assert min(delays) < nominal
    assert max(delays) > nominal


def test_delay_grows_exponentially() -> None:
    policy = RetryPolicy(base_delay_s=1.0, factor=2.0, max_delay_s=10_000, jitter=0)

    delays = [policy.delay_s(attempt) for attempt in range(1, 8)]

    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]


@pytest.mark.parametrize("attempt", [5, 6, 10, 30])
def test_delay_capped_at_max(attempt: int) -> None:
    policy = RetryPolicy(base_delay_s=1.0, factor=2.0, max_delay_s=10.0, jitter=0.2)

    delays = [policy.delay_s(attempt) for _ in range(SAMPLES)]

    # The cap applies before the jitter, as RetryPolicy documents.
    assert min(delays) >= 10.0 * 0.8
    assert max(delays) <= 10.0 * 1.2


def test_delay_capped_for_huge_attempt() -> None:
    policy = RetryPolicy(max_retries=5000, base_delay_s=1.0, factor=2.0, max_delay_s=60.0)

    delay = policy.delay_s(2000)

    assert delay <= 60.0 * 1.2


def test_delay_without_jitter_is_exact() -> None:
    policy = RetryPolicy(base_delay_s=0.25, factor=4.0, max_delay_s=100.0, jitter=0)

    assert policy.delay_s(1) == 0.25
    assert policy.delay_s(2) == 1.0
    assert policy.delay_s(3) == 4.0
    assert policy.delay_s(6) == 100.0


@pytest.mark.parametrize(
    "options",
    [
        {"max_retries": -1},
        {"base_delay_s": -1.0},
        {"factor": 0.5},
        {"max_delay_s": -1.0},
        {"jitter": 1.5},
        {"jitter": -0.1},
    ],
)
def test_invalid_policy_raises(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        RetryPolicy(**options)
