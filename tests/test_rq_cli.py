"""`oxanus-sync rq COMMAND`: RQ's commands, in-process and as worker subprocesses."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from oxanus_sync import Client
from oxanus_sync.cli import main
from oxanus_sync.rq import Queue
from oxanus_sync.rq.job import JobStatus
from tests import rq_jobs
from tests.helpers import RunnerProcess, wait_until
from tests.rq_helpers import burst


@pytest.fixture
def client(redis_url: str, namespace: str) -> Iterator[Client]:
    client = Client(redis.Redis.from_url(redis_url), namespace=namespace)
    yield client
    client.close()


def _worker(redis_url: str, namespace: str, *options: str) -> RunnerProcess:
    return RunnerProcess(
        [
            sys.executable,
            "-m",
            "oxanus_sync",
            "rq",
            "worker",
            "--url",
            redis_url,
            "--namespace",
            namespace,
            *options,
        ]
    )


def test_worker_burst_runs_jobs(client: Client, redis_url: str, namespace: str) -> None:
    high = Queue("high", connection=client)
    low = Queue("low", connection=client)
    done = low.enqueue(rq_jobs.add, 1, 2)
    first = high.enqueue(rq_jobs.add, 3, 4)

    process = _worker(redis_url, namespace, "high", "low", "--burst")
    assert process.wait(timeout_s=60) == 0, process.output()
    assert done.return_value() == 3
    assert first.return_value() == 7
    assert "job succeeded" in process.output()


def test_worker_warm_then_cold_shutdown(client: Client, redis_url: str, namespace: str) -> None:
    queue = Queue("default", connection=client)
    gate = f"{namespace}:gate"
    log = f"{namespace}:log"
    job = queue.enqueue(rq_jobs.record_pid_and_wait, log, gate)

    process = _worker(redis_url, namespace, "-v")
    try:
        wait_until(lambda: client.redis.llen(log) == 1, 30, "the job started")
        process.signal(signal.SIGTERM)
        wait_until(lambda: "stop signal" in process.output(), 30, "the worker saw the signal")
        assert process.running()
        client.redis.set(gate, 1)
        assert process.wait(timeout_s=30) == 0, process.output()
        assert job.get_status() == JobStatus.FINISHED
    finally:
        if process.running():
            process.kill()
            process.wait(timeout_s=10)


def test_second_signal_exits_at_once(client: Client, redis_url: str, namespace: str) -> None:
    queue = Queue("default", connection=client)
    log = f"{namespace}:log"
    queue.enqueue(rq_jobs.record_pid_and_wait, log, f"{namespace}:gate")

    process = _worker(redis_url, namespace)
    try:
        wait_until(lambda: client.redis.llen(log) == 1, 30, "the job started")
        process.signal(signal.SIGTERM)
        wait_until(lambda: "stop signal" in process.output(), 30, "the worker saw the signal")
        process.signal(signal.SIGTERM)
        assert process.wait(timeout_s=30) == 1, process.output()
    finally:
        if process.running():
            process.kill()
            process.wait(timeout_s=10)


def test_info_lists_queues(
    client: Client, redis_url: str, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    queue = Queue("default", connection=client)
    queue.enqueue(rq_jobs.add, 1)
    queue.enqueue(rq_jobs.fail)
    burst([queue], client, max_jobs=1)

    status = main(["rq", "info", "--url", redis_url, "--namespace", namespace, "-r"])
    output = capsys.readouterr().out
    assert status == 0
    assert "queue default 1 (0 started, 1 finished, 0 failed" in output
    assert "1 queues" in output
    assert "0 workers" in output


def test_requeue_all(
    client: Client, redis_url: str, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    queue = Queue("default", connection=client)
    job = queue.enqueue(rq_jobs.fail)
    burst([queue], client)

    status = main(["rq", "requeue", "--url", redis_url, "--namespace", namespace, "--all"])
    assert status == 0
    assert "Requeued 1 of 1" in capsys.readouterr().out
    assert job.get_status() == JobStatus.QUEUED


def test_requeue_needs_ids_or_all(
    redis_url: str, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["rq", "requeue", "--url", redis_url, "--namespace", namespace])

    assert status == 2
    assert "--all" in capsys.readouterr().err


def test_empty_prints_count(
    client: Client, redis_url: str, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    queue = Queue("default", connection=client)
    queue.enqueue(rq_jobs.add, 1)
    queue.enqueue(rq_jobs.add, 2)

    status = main(["rq", "empty", "default", "--url", redis_url, "--namespace", namespace])
    assert status == 0
    assert "2 jobs removed from default queue" in capsys.readouterr().out
    assert queue.count == 0


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--max-jobs", "-1", "invalid number '-1': must be 1 or more"),
        ("--max-jobs", "x", "invalid number 'x'"),
        ("--max-idle-time", "-5", "invalid number of seconds '-5': must be above 0"),
    ],
)
def test_worker_rejects_bad_limits(
    redis_url: str, option: str, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rq", "worker", "--burst", "--url", redis_url, option, value]) == 2
    assert message in capsys.readouterr().err


def test_worker_without_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RQ_REDIS_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)

    assert main(["rq", "worker", "--burst"]) == 2
    assert "no Redis URL" in capsys.readouterr().err


def test_native_info_shows_rq_queue(
    client: Client, redis_url: str, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    Queue("rq-emails", connection=client).enqueue(rq_jobs.add, 1)

    status = main(["info", "--url", redis_url, "--namespace", namespace])
    assert status == 0
    assert "rq-emails" in capsys.readouterr().out


def test_worker_reads_settings_module(
    client: Client, redis_url: str, namespace: str, tmp_path: Path
) -> None:
    (tmp_path / "rq_settings.py").write_text(
        f"REDIS_URL = {redis_url!r}\nQUEUES = ['from-settings']\nNAME = 'settings-worker'\n"
    )
    job = Queue("from-settings", connection=client).enqueue(rq_jobs.add, 2, 2)

    process = RunnerProcess(
        [
            sys.executable,
            "-m",
            "oxanus_sync",
            "rq",
            "worker",
            "--burst",
            "--namespace",
            namespace,
            "-P",
            str(tmp_path),
            "-c",
            "rq_settings",
        ]
    )
    assert process.wait(timeout_s=60) == 0, process.output()
    assert job.return_value() == 4
    job.refresh()
    assert job.worker_name == "settings-worker"
