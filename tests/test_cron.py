"""Periodic jobs: tick computation across daylight-saving changes, one run per tick across
Runners, and the policy for ticks missed while no Runner was up."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from oxanus_sync import Client, Config, ConfigurationError, Context, Queue, Runner, Worker
from oxanus_sync.cron import CronJob
from oxanus_sync.storage.keys import QueueKeys
from tests.helpers import Recorder, started, wait_until

ROOT = Path(__file__).resolve().parent.parent
PARIS = ZoneInfo("Europe/Paris")
QUEUE = Queue("periodic")


class Tick(Worker, name="tests.cron.Tick"):
    label: str

    def process(self, ctx: Context[Recorder]) -> None:
        ctx.shared.add((self.label, ctx.meta.scheduled_at))


@pytest.fixture
def client(redis_url: str, namespace: str) -> Iterator[Client]:
    client = Client.from_url(redis_url, namespace=namespace)
    yield client
    client.close()


def paris(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=PARIS)


def cron_config(client: Client, expression: str, **options: str) -> Config:
    config = Config(client=client)
    config.register_cron(expression, Tick(label="tick"), QUEUE, name="tick", **options)
    return config


# Tick computation


def test_spring_forward_runs_after_gap() -> None:
    job = CronJob.build("30 2 * * *", Tick(label="x"), "q", timezone="Europe/Paris")

    tick = job.next_tick(paris(2026, 3, 28, 12, 0))

    assert tick.astimezone(PARIS) == paris(2026, 3, 29, 3, 0)


def test_fall_back_runs_once() -> None:
    job = CronJob.build("30 2 * * *", Tick(label="x"), "q", timezone="Europe/Paris")
    first = job.next_tick(paris(2026, 10, 24, 12, 0))

    following = job.next_tick(first)

    assert first == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert following == datetime(2026, 10, 26, 1, 30, tzinfo=UTC)


def test_latest_tick_skips_repeated_hour() -> None:
    job = CronJob.build("30 2 * * *", Tick(label="x"), "q", timezone="Europe/Paris")

    latest = job.latest_tick(datetime(2026, 10, 25, 2, 0, tzinfo=UTC))

    assert latest == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


def test_latest_tick_includes_exact_tick() -> None:
    job = CronJob.build("5 12 * * *", Tick(label="x"), "q")

    assert job.latest_tick(datetime(2026, 1, 1, 12, 5, tzinfo=UTC)).hour == 12
    assert job.latest_tick(datetime(2026, 1, 1, 12, 4, 59, tzinfo=UTC)).day == 31


def test_seconds_field_is_last() -> None:
    job = CronJob.build("* * * * * */10", Tick(label="x"), "q")

    tick = job.next_tick(datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC))

    assert tick == datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "timezone"),
    [("not cron", "UTC"), ("61 * * * *", "UTC"), ("* * * * *", "Mars/Olympus")],
)
def test_invalid_cron_raises(expression: str, timezone: str) -> None:
    with pytest.raises(ConfigurationError):
        CronJob.build(expression, Tick(label="x"), "q", timezone=timezone)


@pytest.mark.parametrize("expression", ["0 0 30 2 *", "* * * * * * 2020"])
def test_cron_never_firing_raises(expression: str) -> None:
    with pytest.raises(ConfigurationError, match="never fires"):
        CronJob.build(expression, Tick(label="x"), "q")


def test_cron_timezone_must_be_text() -> None:
    with pytest.raises(ConfigurationError, match="invalid time zone None"):
        CronJob.build("* * * * *", Tick(label="x"), "q", timezone=None)  # type: ignore[arg-type]


@pytest.mark.parametrize("queue", ["a b", "tenants[acme]", ""])
def test_cron_invalid_queue_name_raises(client: Client, queue: str) -> None:
    config = Config(client=client)

    with pytest.raises(ConfigurationError, match="invalid queue name"):
        config.register_cron("* * * * *", Tick(label="x"), queue)


@pytest.mark.timeout(30)
def test_exhausted_expression_leaves_others_running(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    config = cron_config(client, "* * * * * *")
    # Built without CronJob.build, which rejects it: a job whose last tick has passed.
    exhausted = CronJob(
        name="exhausted",
        expression="* * * * * * 2020",
        job=Tick(label="old"),
        queue=QUEUE.name,
        timezone=ZoneInfo("UTC"),
    )
    config.cron_jobs[exhausted.name] = exhausted

    with started(Runner(config, context=recorder)):
        wait_until(lambda: len(recorder) >= 2, 10, "two ticks of the valid job have run")

    assert {label for label, _ in recorder.events()} == {"tick"}
    assert "periodic job has no more ticks" in caplog.text
    assert "oxanus-cron: unexpected error" not in caplog.text


def test_cron_queue_must_be_registered(client: Client) -> None:
    config = Config(client=client)
    config.register_queue(QUEUE)
    config.register_cron("* * * * *", Tick(label="x"), "unregistered")

    with pytest.raises(ConfigurationError) as raised:
        config.validate()

    assert "unregistered" in str(raised.value)


# Runners


@pytest.mark.timeout(30)
def test_tick_runs_once_across_runners(client: Client) -> None:
    recorder = Recorder()
    runners = [Runner(cron_config(client, "* * * * * *"), context=recorder) for _ in range(3)]

    with ExitStack() as stack:
        for runner in runners:
            stack.enter_context(started(runner))
        wait_until(lambda: len(recorder) >= 3, 10, "three ticks have run")

    ticks = [tick for _, tick in recorder.events()]
    assert len(ticks) == len(set(ticks))
    assert all(tick is not None and tick.microsecond == 0 for tick in ticks)


def test_missed_tick_runs_latest_once(client: Client, namespace: str) -> None:
    recorder = Recorder()
    keys = QueueKeys.build(namespace, QUEUE.name)
    day_ago = int((time.time() - 86_400) * 1000)
    client.redis.hset(keys.cron, "tick", day_ago)

    Runner(cron_config(client, "0 * * * *"), context=recorder).drain(timeout_s=10)

    [(_, tick)] = recorder.events()
    now = datetime.now(UTC)
    assert tick is not None
    assert now - timedelta(hours=1) < tick <= now
    assert tick.minute == 0


def test_missed_tick_skipped_by_policy(client: Client, namespace: str) -> None:
    recorder = Recorder()
    keys = QueueKeys.build(namespace, QUEUE.name)
    day_ago = int((time.time() - 86_400) * 1000)
    client.redis.hset(keys.cron, "tick", day_ago)

    Runner(cron_config(client, "0 * * * *", missed="skip"), context=recorder).drain(timeout_s=10)

    last = client.storage.last_cron_tick(QUEUE.name, "tick")
    assert recorder.events() == []
    assert last is not None
    assert last > day_ago


def test_first_start_runs_no_missed_tick(client: Client) -> None:
    recorder = Recorder()

    Runner(cron_config(client, "0 * * * *"), context=recorder).drain(timeout_s=10)

    assert recorder.events() == []


def test_info_lists_periodic_jobs(client: Client, redis_url: str, namespace: str) -> None:
    runner = Runner(cron_config(client, "0 3 * * *", timezone="Europe/Paris"), context=Recorder())
    with started(runner):
        wait_until(lambda: client.periodic_jobs(), 10, "the periodic job is published")

    result = subprocess.run(
        [sys.executable, "-m", "oxanus_sync", "info", "--url", redis_url, "--namespace", namespace],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    [entry] = client.periodic_jobs().values()
    assert result.returncode == 0, result.stderr
    assert "tick" in result.stdout
    assert "Europe/Paris" in result.stdout
    assert entry["expression"] == "0 3 * * *"
    assert entry["next_run_ms"] > client.server_time_ms()
