"""Job timeouts and cancellation: recorded on time, interrupted where Python can, and
signalled cooperatively."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from oxanus_sync import (
    Client,
    Context,
    JobCancelled,
    Queue,
    QueueConfig,
    RetryPolicy,
    Runner,
    RunnerSettings,
    Worker,
)
from tests.helpers import Recorder, build_config, started, wait_until

QUEUE = Queue("timed", QueueConfig(concurrency=2, retry=RetryPolicy(max_retries=1, base_delay_s=0)))
SETTINGS = RunnerSettings(shutdown_timeout_s=2, block_timeout_s=0.5)


class Spin(Worker, name="tests.timeouts.Spin"):
    """Pure-Python loop that never ends by itself."""

    timeout_s = 0.3

    def process(self, ctx: Context[Recorder]) -> None:
        try:
            ctx.shared.add(("start", ctx.attempt))
            while True:
                pass
        except BaseException as error:
            ctx.shared.add(("interrupted", type(error).__name__))
            raise


class Blocked(Worker, name="tests.timeouts.Blocked"):
    """Blocked in C code (an Event wait) past its timeout; the JobTimeout raised into its
    thread takes effect when the wait returns, so the last line never runs."""

    timeout_s = 0.3
    max_retries = 0

    def process(self, ctx: Context[Recorder]) -> None:
        ctx.shared.add(("start", ctx.attempt))
        threading.Event().wait(1.5)
        ctx.shared.add(("returned", ctx.attempt))


class Polite(Worker, name="tests.timeouts.Polite"):
    """Checks ctx.cancelled while it works."""

    def process(self, ctx: Context[Recorder]) -> None:
        ctx.shared.add(("start", ctx.job_id))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            time.sleep(0.02)
            if ctx.cancelled:
                ctx.shared.add(("saw cancel", ctx.job_id))
                ctx.raise_if_cancelled()


@pytest.fixture
def client(redis_url: str, namespace: str) -> Iterator[Client]:
    client = Client.from_url(redis_url, namespace=namespace)
    yield client
    client.close()


@pytest.mark.timeout(30)
def test_pure_python_job_interrupted_and_retried(client: Client) -> None:
    recorder = Recorder()
    client.enqueue(QUEUE, Spin())

    stats = Runner(build_config(client, [QUEUE], [Spin], SETTINGS), context=recorder).drain(
        timeout_s=20, include_scheduled=True
    )

    events = recorder.events()
    [dead] = client.dead_jobs(QUEUE)
    # On a loaded machine the timeout can land before the job's first line, so count the
    # interruptions the job saw as at least one.
    assert ("interrupted", "JobTimeout") in events
    assert stats.retried == 1
    assert stats.dead == 1
    assert dead.error is not None
    assert "timed out after 0.3s" in dead.error["message"]
    assert client.stats([QUEUE])[0].timed_out == 2


@pytest.mark.timeout(30)
def test_blocked_job_recorded_on_time(client: Client) -> None:
    recorder = Recorder()
    client.enqueue(QUEUE, Blocked())
    runner = Runner(build_config(client, [QUEUE], [Blocked], SETTINGS), context=recorder)

    with started(runner):
        started_at = time.monotonic()
        wait_until(lambda: client.dead_jobs(QUEUE), 5, "the timed-out job is dead")
        recorded_after = time.monotonic() - started_at
        busy_at_record = runner.busy()
        wait_until(lambda: runner.busy() == 0, 5, "the blocked call returns and frees its slot")

    counts = client.stats([QUEUE])[0]
    assert recorded_after < 1.2
    assert busy_at_record == 1
    assert recorder.events() == [("start", 1)]
    assert counts.succeeded == 0
    assert counts.dead == 1


@pytest.mark.timeout(30)
def test_running_job_sees_cancellation(client: Client) -> None:
    recorder = Recorder()
    job_id = client.enqueue(QUEUE, Polite())
    runner = Runner(build_config(client, [QUEUE], [Polite], SETTINGS), context=recorder)

    with started(runner):
        wait_until(lambda: len(recorder) == 1, 5, "the job starts")
        outcome = client.cancel(QUEUE, job_id)
        wait_until(lambda: client.dead_jobs(QUEUE), 5, "the cancelled job stops")

    [dead] = client.dead_jobs(QUEUE)
    assert outcome == "requested"
    assert ("saw cancel", job_id) in recorder.events()
    assert dead.error is not None
    assert dead.error["type"] == "oxanus_sync.errors.JobCancelled"


def test_waiting_jobs_cancelled(client: Client) -> None:
    ready_id = client.enqueue(QUEUE, Polite())
    scheduled_id = client.enqueue_in(QUEUE, Polite(), 60)

    outcomes = [client.cancel(QUEUE, ready_id), client.cancel(QUEUE, scheduled_id)]

    counts = client.stats([QUEUE])[0]
    assert outcomes == ["cancelled", "cancelled"]
    assert client.job(QUEUE, ready_id) == {}
    assert counts.ready == 0
    assert counts.scheduled == 0
    assert counts.cancelled == 2


def test_unknown_job_cancel_not_found(client: Client) -> None:
    assert client.cancel(QUEUE, "no-such-job") == "not_found"


def test_cancelled_error_is_not_an_exception() -> None:
    assert not issubclass(JobCancelled, Exception)
