"""The `oxanus-sync` command line, run as `python -m oxanus_sync` subprocesses on real Redis."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest
import redis

from oxanus_sync import Client, Config, Queue, QueueConfig, Runner, Throttle
from oxanus_sync.cli import format_duration, load_config
from oxanus_sync.client import redact_url
from tests.cli_app import QUEUE, SetMarker, UniqueMarker

ROOT = Path(__file__).resolve().parent.parent

COMMAND_TIMEOUT_S = 30.0
"""Maximum time in seconds for a command that does not run a worker to exit."""

WORKER_START_TIMEOUT_S = 20.0
"""Maximum time in seconds for a worker subprocess to register itself or run a job."""

WORKER_STOP_TIMEOUT_S = 20.0
"""Maximum time in seconds for a worker subprocess to exit after SIGTERM."""

BAD_APPS = [
    "nocolon",
    "no_such_module:x",
    "tests.cli_app:missing",
    "tests.cli_app:not_a_config",
    "tests.cli_app:make_text",
]


def child_env(**overrides: str) -> dict[str, str]:
    """Return the environment of a CLI subprocess: REDIS_URL unset, the repository importable."""
    env = {name: value for name, value in os.environ.items() if name != "REDIS_URL"}
    paths = [str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(overrides)
    return env


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oxanus_sync", *args],
        cwd=ROOT,
        env=env if env is not None else child_env(),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )


def wait_until(
    predicate: Callable[[], bool],
    timeout_s: float,
    condition: str,
    details: Callable[[], str] = str,
) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            message = f"timed out after {timeout_s}s waiting for {condition}"
            raise AssertionError(f"{message}\n{details()}")
        time.sleep(0.02)


class WorkerProcess:
    """An `oxanus-sync worker` subprocess whose stdout and stderr go to a log file."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "oxanus_sync", *args],
            cwd=ROOT,
            env=child_env(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait(self, timeout_s: float) -> int:
        return self.process.wait(timeout=timeout_s)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=WORKER_STOP_TIMEOUT_S)
        self._log.close()


@pytest.fixture
def start_worker(
    redis_url: str, namespace: str, tmp_path: Path
) -> Iterator[Callable[[], WorkerProcess]]:
    """Start `oxanus-sync worker tests.cli_app:config` on the test's namespace, kill it after."""
    started: list[WorkerProcess] = []

    def start() -> WorkerProcess:
        args = ["worker", "tests.cli_app:config", "--url", redis_url, "--namespace", namespace]
        worker = WorkerProcess(args, tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()


@pytest.fixture
def client(redis_client: redis.Redis, namespace: str) -> Client:
    return Client(redis_client, namespace=namespace)


def wait_for_registration(client: Client, worker: WorkerProcess) -> None:
    wait_until(
        lambda: worker.pid in {record.pid for record in client.processes()},
        WORKER_START_TIMEOUT_S,
        f"worker pid {worker.pid} to register",
        worker.output,
    )


def table(output: str, first_header: str, second_header: str = "") -> list[dict[str, str]]:
    """Parse the table of `output` whose header starts with `first_header` into rows.

    With `second_header`, the header's second column must also match. Cells are separated by
    two or more spaces, and no cell or header contains two spaces.
    """
    lines = output.splitlines()
    start = next(
        i
        for i, line in enumerate(lines)
        if re.split(r" {2,}", line.strip())[0] == first_header
        and (not second_header or re.split(r" {2,}", line.strip())[1:2] == [second_header])
    )
    headers = re.split(r" {2,}", lines[start].strip())
    rows = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        rows.append(dict(zip(headers, re.split(r" {2,}", line.strip()), strict=True)))
    return rows


# worker


def test_worker_runs_job(
    start_worker: Callable[[], WorkerProcess],
    client: Client,
    redis_client: redis.Redis,
    redis_url: str,
    namespace: str,
) -> None:
    marker = f"{namespace}:marker"
    client.enqueue(QUEUE, SetMarker(url=redis_url, key=marker, value="done"))

    worker = start_worker()

    wait_until(
        lambda: redis_client.get(marker) == b"done",
        WORKER_START_TIMEOUT_S,
        "the job to set the marker key",
        worker.output,
    )


def test_worker_sigterm_exits_zero(
    start_worker: Callable[[], WorkerProcess], client: Client
) -> None:
    worker = start_worker()
    wait_for_registration(client, worker)

    worker.process.send_signal(signal.SIGTERM)
    code = worker.wait(WORKER_STOP_TIMEOUT_S)

    assert code == 0, worker.output()


def test_worker_log_format(start_worker: Callable[[], WorkerProcess], client: Client) -> None:
    worker = start_worker()
    wait_for_registration(client, worker)
    worker.process.send_signal(signal.SIGTERM)
    worker.wait(WORKER_STOP_TIMEOUT_S)

    started = [line for line in worker.output().splitlines() if "runner started" in line]

    assert len(started) == 1, worker.output()
    assert " INFO oxanus_sync.runner.runner [MainThread] " in started[0]
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", started[0])


def test_worker_url_from_environment(
    client: Client, redis_url: str, namespace: str, tmp_path: Path
) -> None:
    args = [
        sys.executable, "-m", "oxanus_sync", "worker", "tests.cli_app:config",
        "--namespace", namespace,
    ]  # fmt: skip
    with (tmp_path / "worker.log").open("wb") as log:
        process = subprocess.Popen(
            args, cwd=ROOT, env=child_env(REDIS_URL=redis_url), stdout=log, stderr=log
        )
        try:
            wait_until(
                lambda: process.pid in {record.pid for record in client.processes()},
                WORKER_START_TIMEOUT_S,
                "the worker started with REDIS_URL to register",
                (tmp_path / "worker.log").read_text,
            )
        finally:
            process.kill()
            process.wait(timeout=WORKER_STOP_TIMEOUT_S)


@pytest.mark.parametrize("app", BAD_APPS)
def test_worker_bad_app(app: str, redis_url: str) -> None:
    result = run_cli("worker", app, "--url", redis_url)

    assert result.returncode == 2
    assert repr(app) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_worker_without_url() -> None:
    result = run_cli("worker", "tests.cli_app:config")

    assert result.returncode == 2
    assert "--url" in result.stderr
    assert "REDIS_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_worker_invalid_url() -> None:
    result = run_cli("worker", "tests.cli_app:config", "--url", "nonsense://127.0.0.1")

    assert result.returncode == 2
    assert "'nonsense://127.0.0.1'" in result.stderr
    assert "Traceback" not in result.stderr


def test_worker_unreachable_redis(tmp_path: Path) -> None:
    url = f"unix://{tmp_path}/missing.sock"

    result = run_cli("worker", "tests.cli_app:config", "--url", url)

    assert result.returncode == 1
    assert f"cannot reach Redis at {url}" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("namespace", ["{x}", "", "a b"])
def test_worker_invalid_namespace(redis_url: str, namespace: str) -> None:
    result = run_cli("worker", "tests.cli_app:config", "--url", redis_url, "--namespace", namespace)

    assert result.returncode == 2
    assert f"invalid namespace {namespace!r}" in result.stderr


# info


def test_info_shows_queue_and_process(
    start_worker: Callable[[], WorkerProcess],
    client: Client,
    redis_client: redis.Redis,
    redis_url: str,
    namespace: str,
) -> None:
    marker = f"{namespace}:marker"
    client.enqueue(QUEUE, SetMarker(url=redis_url, key=marker, value="done"))
    client.enqueue_in(QUEUE, SetMarker(url=redis_url, key=marker, value="later"), 3600)
    worker = start_worker()
    wait_for_registration(client, worker)
    wait_until(
        lambda: client.stats([QUEUE])[0].succeeded == 1,
        WORKER_START_TIMEOUT_S,
        "the job to succeed",
        worker.output,
    )

    result = run_cli("info", "--url", redis_url, "--namespace", namespace)

    assert result.returncode == 0, result.stderr
    queues = table(result.stdout, "queue")
    assert [row["queue"] for row in queues] == ["cli"]
    assert queues[0]["ready"] == "0"
    assert queues[0]["scheduled"] == "1"
    assert queues[0]["retry"] == "0"
    assert queues[0]["dead"] == "0"
    assert queues[0]["running"] == "0"
    assert queues[0]["latency"] == "-"
    assert queues[0]["processed"] == "1"
    assert queues[0]["succeeded"] == "1"
    assert queues[0]["failed"] == "0"
    processes = table(result.stdout, "id")
    assert [row["pid"] for row in processes] == [str(worker.pid)]
    assert processes[0]["queues"] == "cli"
    assert processes[0]["busy"] == "0/2"
    assert processes[0]["failing"] == "-"


def test_info_shows_queue_features(client: Client, redis_url: str, namespace: str) -> None:
    throttled = Queue("cli-throttled", QueueConfig(throttle=Throttle(limit=5, window_s=60.0)))
    client.enqueue_many(
        throttled, [UniqueMarker(url=redis_url, key=f"{namespace}:m{i}") for i in range(2)]
    )
    client.enqueue(QUEUE, UniqueMarker(url=redis_url, key=f"{namespace}:held"))
    config = Config(client=client)
    config.register_queue(throttled)
    config.register(UniqueMarker)
    Runner(config).drain(timeout_s=20)

    result = run_cli("info", "--url", redis_url, "--namespace", namespace)

    assert result.returncode == 0, result.stderr
    rows = {row["queue"]: row for row in table(result.stdout, "queue", "unique keys")}
    assert sorted(rows) == ["cli", "cli-throttled"]
    assert rows["cli"]["unique keys"] == "1"
    assert rows["cli"]["throttle"] == "-"
    assert rows["cli-throttled"]["unique keys"] == "0"
    assert rows["cli-throttled"]["throttle"] == "5 per 1.0min"
    assert rows["cli-throttled"]["in window"] == "2/5"
    assert rows["cli-throttled"]["next"] == "now"


def test_info_ready_latency(client: Client, redis_url: str, namespace: str) -> None:
    client.enqueue(QUEUE, SetMarker(url=redis_url, key=f"{namespace}:marker", value="x"))

    result = run_cli("info", "--url", redis_url, "--namespace", namespace)

    queues = table(result.stdout, "queue")
    assert queues[0]["ready"] == "1"
    assert re.fullmatch(r"\d+ms|\d+\.\ds", queues[0]["latency"])


def test_info_json(
    start_worker: Callable[[], WorkerProcess],
    client: Client,
    redis_url: str,
    namespace: str,
) -> None:
    idle = Queue("cli-idle")
    client.enqueue(idle, SetMarker(url=redis_url, key=f"{namespace}:marker", value="x"))
    worker = start_worker()
    wait_for_registration(client, worker)

    result = run_cli("info", "--url", redis_url, "--namespace", namespace, "--json")

    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["namespace"] == namespace
    queues = {queue["queue"]: queue for queue in document["queues"]}
    assert sorted(queues) == ["cli", "cli-idle"]
    assert queues["cli-idle"]["ready"] == 1
    assert [process["pid"] for process in document["processes"]] == [worker.pid]
    assert document["processes"][0]["queues"] == ["cli"]
    assert document["processes"][0]["failing"] == {}


def test_info_empty_namespace(redis_url: str, namespace: str) -> None:
    result = run_cli("info", "--url", redis_url, "--namespace", namespace)

    assert result.returncode == 0, result.stderr
    assert "no queues" in result.stdout.splitlines()
    assert "no live processes" in result.stdout.splitlines()


def test_info_empty_namespace_json(redis_url: str, namespace: str) -> None:
    result = run_cli("info", "--url", redis_url, "--namespace", namespace, "--json")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "namespace": namespace,
        "queues": [],
        "processes": [],
        "periodic": {},
    }


def test_info_url_from_environment(redis_url: str, namespace: str) -> None:
    result = run_cli("info", "--namespace", namespace, env=child_env(REDIS_URL=redis_url))

    assert result.returncode == 0, result.stderr
    assert "no queues" in result.stdout.splitlines()


def test_info_without_url() -> None:
    result = run_cli("info")

    assert result.returncode == 2
    assert "--url" in result.stderr
    assert "REDIS_URL" in result.stderr


def test_info_invalid_url() -> None:
    result = run_cli("info", "--url", "redis://user:secret@127.0.0.1:port/0")

    assert result.returncode == 2
    assert "'redis://user:***@127.0.0.1:port/0'" in result.stderr
    assert "secret" not in result.stderr
    assert "Traceback" not in result.stderr


def test_info_unreachable_redis(tmp_path: Path) -> None:
    url = f"unix://{tmp_path}/missing.sock"

    result = run_cli("info", "--url", url)

    assert result.returncode == 1
    assert f"cannot reach Redis at {url}" in result.stderr
    assert "Traceback" not in result.stderr


# Help and helpers


@pytest.mark.parametrize("command", [[], ["worker"], ["info"]])
def test_help_exits_zero(command: list[str]) -> None:
    result = run_cli(*command, "--help")

    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: oxanus-sync {' '.join(command)}".rstrip())


def test_load_config_calls_factory() -> None:
    config = load_config("tests.cli_app:make_config")

    assert list(config.queues) == ["cli"]
    assert list(config.job_types) == ["tests.cli.SetMarker"]
    assert config.client is None


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (-5, "0ms"),
        (0, "0ms"),
        (12, "12ms"),
        (999, "999ms"),
        (3_400, "3.4s"),
        (312_000, "5.2min"),
        (11_160_000, "3.1h"),
        (172_800_000, "2.0d"),
    ],
)
def test_format_duration(ms: int, text: str) -> None:
    assert format_duration(ms) == text


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://user:secret@127.0.0.1:6379/0", "redis://user:***@127.0.0.1:6379/0"),
        ("redis://:secret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("unix:///tmp/redis.sock", "unix:///tmp/redis.sock"),
    ],
)
def test_redact_url(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted
