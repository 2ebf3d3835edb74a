"""Connections over TLS, as an ACL user and through a password-protected unix socket, and
passwords kept out of logs, command output and error messages.

The tests run private redis-servers, because they change users and passwords: one per test,
except the TLS server that the module shares. A Runner opens two connections of its own
besides the client's pool: the fetcher's, blocked in BLMOVE while its queue is empty, and the
heartbeat's. Both are built from the pool's connection arguments, so the tests check that
they connect, authenticate and carry the Runner's name.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from oxanus_sync import (
    Client,
    ConfigurationError,
    Context,
    Queue,
    QueueConfig,
    Runner,
    RunnerSettings,
    Worker,
)
from oxanus_sync.cli import describe_connection
from oxanus_sync.client import describe_server
from oxanus_sync.devserver import DevServerError, RedisProcess, start_server
from oxanus_sync.errors import RedisUnavailableError
from tests.cli_app import QUEUE as CLI_QUEUE
from tests.cli_app import SetMarker
from tests.helpers import Recorder, build_config, started, wait_until
from tests.tls import TLSServer, TLSUnavailableError, start_tls_server

ROOT = Path(__file__).resolve().parent.parent

PASSWORD = "s3cr3t-pass"
WRONG_PASSWORD = "wr0ng-pass-value"
LIMITED_PASSWORD = "l1mited-pass"

QUEUE = Queue("connections", QueueConfig(concurrency=2))
# A short BLMOVE timeout, so that a Runner that cannot wake its fetcher still stops soon.
SETTINGS = RunnerSettings(shutdown_timeout_s=5.0, block_timeout_s=0.5)

JOB_TIMEOUT_S = 10.0
"""Maximum time in seconds for a Runner to run an enqueued job."""

COMMAND_TIMEOUT_S = 30.0
"""Maximum time in seconds for an `oxanus-sync info` subprocess to exit."""

WORKER_TIMEOUT_S = 20.0
"""Maximum time in seconds for a worker subprocess to run its jobs, or to exit after SIGTERM."""


class Note(Worker, name="tests.connections.Note"):
    text: str

    def process(self, ctx: Context[Recorder]) -> None:
        ctx.shared.add(self.text)


class Crash(Worker, name="tests.connections.Crash"):
    """Fails at once and goes dead, so that the failure and dead-job logs get written."""

    max_retries = 0

    def process(self, ctx: Context[Recorder]) -> None:
        raise RuntimeError("job failed on purpose")


# Servers


def tcp_url(server: RedisProcess, user: str, password: str) -> str:
    return f"redis://{user}:{password}@127.0.0.1:{server.port}/0"


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSServer]:
    """A redis-server that accepts only TLS, with a CA of its own, shared by the module."""
    try:
        server = start_tls_server(tmp_path_factory.mktemp("tls"))
    except TLSUnavailableError as error:
        pytest.skip(f"no TLS test server: {error}")
    yield server
    server.stop()


@pytest.fixture
def tls_observer(tls_server: TLSServer) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(tls_server.url_with_ca)
    yield connection
    connection.close()


@pytest.fixture
def acl_server() -> Iterator[RedisProcess]:
    """A redis-server with the user `app` (password PASSWORD, every permission) and the
    default user turned off, so that every connection must log in as a named user."""
    server = start_server()
    try:
        with redis.Redis.from_url(server.url) as default_user:
            default_user.execute_command(
                "ACL", "SETUSER", "app", "on", f">{PASSWORD}", "~*", "&*", "+@all"
            )
        with redis.Redis.from_url(tcp_url(server, "app", PASSWORD)) as app:
            app.execute_command("ACL", "SETUSER", "default", "off")
        yield server
    finally:
        server.stop()


@pytest.fixture
def admin(acl_server: RedisProcess) -> Iterator[redis.Redis]:
    """A connection to `acl_server` as the user `app`, which may run every command."""
    connection = redis.Redis.from_url(tcp_url(acl_server, "app", PASSWORD))
    yield connection
    connection.close()


@dataclass(frozen=True)
class UnixServer:
    socket_path: Path
    password: str

    def url(self, form: str) -> str:
        """Return the URL of the server with the password in the userinfo or the query."""
        if form == "userinfo":
            return f"unix://:{self.password}@{self.socket_path}?db=0"
        return f"unix://{self.socket_path}?db=0&password={self.password}"


@pytest.fixture
def unix_server() -> Iterator[UnixServer]:
    """A redis-server on a unix socket whose default user needs the password PASSWORD."""
    # A directory of its own keeps the socket path under the 107-byte limit of sun_path.
    socket_dir = Path(tempfile.mkdtemp(prefix="oxanus-unix-"))
    socket_path = socket_dir / "redis.sock"
    try:
        server = start_server(
            extra_args=["--unixsocket", str(socket_path), "--unixsocketperm", "700"]
        )
    except DevServerError:
        shutil.rmtree(socket_dir, ignore_errors=True)
        raise

    try:
        with redis.Redis.from_url(server.url) as default_user:
            default_user.execute_command(
                "ACL", "SETUSER", "default", "on", "resetpass", f">{PASSWORD}"
            )
        yield UnixServer(socket_path, PASSWORD)
    finally:
        server.stop()
        shutil.rmtree(socket_dir, ignore_errors=True)


@pytest.fixture
def unix_observer(unix_server: UnixServer) -> Iterator[redis.Redis]:
    connection = redis.Redis(unix_socket_path=str(unix_server.socket_path), password=PASSWORD)
    yield connection
    connection.close()


# Runner helpers


@dataclass(frozen=True)
class Served:
    """What a Runner ran, and the connections it had opened under its own name."""

    events: list[Any]
    connections: list[dict[str, Any]]

    def names(self, process_id: str) -> set[str]:
        return {entry["name"].replace(process_id, "ID") for entry in self.connections}

    def users(self) -> set[str]:
        return {entry["user"] for entry in self.connections}


def runner_connections(observer: redis.Redis, process_id: str) -> list[dict[str, Any]]:
    """Return the CLIENT LIST entries of the connections named after `process_id`."""
    return [entry for entry in observer.client_list() if process_id in entry.get("name", "")]


def serve_two_jobs(client: Client, observer: redis.Redis) -> tuple[Served, str]:
    """Run one job claimed by the claim script, then one claimed by BLMOVE, and stop.

    Returns what ran, and the Runner's named connections that `observer` saw while the
    fetcher was blocked, with the Runner's process id.
    """
    recorder = Recorder()
    runner = Runner(build_config(client, [QUEUE], [Note], SETTINGS), context=recorder)
    client.enqueue(QUEUE, Note(text="claimed"))

    with started(runner):
        wait_until(lambda: len(recorder) == 1, JOB_TIMEOUT_S, "the first job ran")
        wait_until(
            lambda: any(
                entry["cmd"] == "blmove"
                for entry in runner_connections(observer, runner.process_id)
            ),
            JOB_TIMEOUT_S,
            "the fetcher blocked in BLMOVE on its own connection",
        )
        connections = runner_connections(observer, runner.process_id)
        client.enqueue(QUEUE, Note(text="blocked"))
        wait_until(lambda: len(recorder) == 2, JOB_TIMEOUT_S, "the second job ran")

    return Served(recorder.events(), connections), runner.process_id


# Command line helpers


def child_env() -> dict[str, str]:
    """Return the environment of a CLI subprocess: REDIS_URL unset, the repository importable."""
    env = {name: value for name, value in os.environ.items() if name != "REDIS_URL"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return env


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oxanus_sync", *args],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )


def start_worker(url: str, namespace: str, log_path: Path) -> subprocess.Popen[bytes]:
    """Start `oxanus-sync worker tests.cli_app:config` at DEBUG level, logging to `log_path`."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [
                *[sys.executable, "-m", "oxanus_sync", "worker", "tests.cli_app:config"],
                *["--url", url, "--namespace", namespace, "--log-level", "DEBUG"],
            ],
            cwd=ROOT,
            env=child_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=WORKER_TIMEOUT_S)


# TLS


@pytest.mark.parametrize("ca_in", ["query", "option"])
def test_tls_runner_runs_jobs(
    tls_server: TLSServer, tls_observer: redis.Redis, namespace: str, ca_in: str
) -> None:
    if ca_in == "query":
        client = Client.from_url(tls_server.url_with_ca, namespace=namespace)
    else:
        client = Client.from_url(
            tls_server.url,
            namespace=namespace,
            ssl_ca_certs=str(tls_server.certificates.ca_path),
        )

    served, process_id = serve_two_jobs(client, tls_observer)
    client.close()

    # The server has no plain TCP port, so every connection it lists came over TLS.
    assert served.events == ["claimed", "blocked"]
    assert "oxanus-heartbeat-ID" in served.names(process_id)
    assert f"oxanus-fetch-ID-{QUEUE.name}" in served.names(process_id)


def test_tls_without_ca_rejected(tls_server: TLSServer, namespace: str) -> None:
    client = Client.from_url(tls_server.url, namespace=namespace)

    with pytest.raises(RedisUnavailableError) as caught:
        client.enqueue(QUEUE, Note(text="untrusted"))
    client.close()

    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)


def test_info_over_tls(tls_server: TLSServer, namespace: str) -> None:
    result = run_cli("info", "--url", tls_server.url_with_ca, "--namespace", namespace)

    assert result.returncode == 0, result.stderr
    assert f"on rediss://127.0.0.1:{tls_server.port}/0" in result.stdout


# ACL users


def test_acl_user_runner_runs_jobs(
    acl_server: RedisProcess, admin: redis.Redis, namespace: str
) -> None:
    client = Client.from_url(tcp_url(acl_server, "app", PASSWORD), namespace=namespace)

    served, process_id = serve_two_jobs(client, admin)
    client.close()

    assert served.events == ["claimed", "blocked"]
    assert "oxanus-heartbeat-ID" in served.names(process_id)
    assert f"oxanus-fetch-ID-{QUEUE.name}" in served.names(process_id)
    assert served.users() == {"app"}


def test_user_without_admin_commands_runs_jobs(
    acl_server: RedisProcess, admin: redis.Redis, namespace: str
) -> None:
    # Such a user may run CLIENT SETNAME (@connection) but not CLIENT LIST or CLIENT UNBLOCK
    # (@admin, @dangerous), so stop() cannot wake the fetcher, which stops when BLMOVE times out.
    admin.execute_command(
        "ACL", "SETUSER", "limited", "on", f">{LIMITED_PASSWORD}", "~*", "&*", "+@all",
        "-@admin", "-@dangerous",
    )  # fmt: skip
    client = Client.from_url(tcp_url(acl_server, "limited", LIMITED_PASSWORD), namespace=namespace)

    served, _ = serve_two_jobs(client, admin)
    client.close()

    assert served.events == ["claimed", "blocked"]
    assert served.users() == {"limited"}


def test_user_without_client_command_runs_jobs(
    acl_server: RedisProcess,
    admin: redis.Redis,
    namespace: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The Runner names its own connections with CLIENT SETNAME, which this user may not run,
    # so it falls back to unnamed connections.
    admin.execute_command(
        "ACL", "SETUSER", "limited", "on", f">{LIMITED_PASSWORD}", "~*", "&*", "+@all", "-client"
    )
    client = Client.from_url(tcp_url(acl_server, "limited", LIMITED_PASSWORD), namespace=namespace)
    recorder = Recorder()
    client.enqueue(QUEUE, Note(text="runs"))

    Runner(build_config(client, [QUEUE], [Note], SETTINGS), context=recorder).drain(timeout_s=20)
    client.close()

    assert recorder.events() == ["runs"]
    assert "CLIENT SETNAME" in caplog.text


# Wrong password


def test_wrong_password_error_hides_password(acl_server: RedisProcess, namespace: str) -> None:
    client = Client.from_url(tcp_url(acl_server, "app", WRONG_PASSWORD), namespace=namespace)

    with pytest.raises(ConfigurationError) as caught:
        client.enqueue(QUEUE, Note(text="rejected"))
    client.close()
    formatted = "".join(traceback.format_exception(caught.value))

    assert "rejected the credentials" in str(caught.value)
    assert "invalid username-password pair" in str(caught.value)
    assert WRONG_PASSWORD not in str(caught.value)
    assert WRONG_PASSWORD not in formatted


def test_wrong_password_logs_hide_password(
    acl_server: RedisProcess, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = Client.from_url(tcp_url(acl_server, "app", WRONG_PASSWORD), namespace=namespace)

    with pytest.raises(ConfigurationError):
        client.enqueue(QUEUE, Note(text="rejected"))
    client.close()

    assert "AuthenticationError" in caplog.text
    assert WRONG_PASSWORD not in caplog.text


def test_info_wrong_password(acl_server: RedisProcess, namespace: str) -> None:
    url = tcp_url(acl_server, "app", WRONG_PASSWORD)

    result = run_cli("info", "--url", url, "--namespace", namespace)

    assert result.returncode == 1, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("oxanus-sync: error:")
    assert "Traceback" not in result.stderr
    assert WRONG_PASSWORD not in result.stderr
    assert WRONG_PASSWORD not in result.stdout


# No password in logs, output or errors


def test_runner_logs_hide_password(
    acl_server: RedisProcess, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = Client.from_url(tcp_url(acl_server, "app", PASSWORD), namespace=namespace)
    client.enqueue_many(QUEUE, [Note(text=f"job {index}") for index in range(3)])
    client.enqueue(QUEUE, Crash())
    runner = Runner(build_config(client, [QUEUE], [Note, Crash], SETTINGS), context=Recorder())

    stats = runner.drain(timeout_s=JOB_TIMEOUT_S)
    client.close()

    assert stats.succeeded == 3
    assert stats.dead == 1
    # DEBUG records and the dead job's traceback were captured, so the check below has text.
    assert "job started" in caplog.text
    assert "job failed on purpose" in caplog.text
    assert PASSWORD not in caplog.text


def test_worker_log_hides_password(
    acl_server: RedisProcess,
    redis_client: redis.Redis,
    redis_url: str,
    namespace: str,
    tmp_path: Path,
) -> None:
    url = tcp_url(acl_server, "app", PASSWORD)
    client = Client.from_url(url, namespace=namespace)
    markers = [f"{namespace}:marker:{index}" for index in range(3)]
    # The jobs set their markers on the session's server, so their arguments hold no password.
    client.enqueue_many(
        CLI_QUEUE, [SetMarker(url=redis_url, key=marker, value="done") for marker in markers]
    )
    client.close()
    log_path = tmp_path / "worker.log"

    worker = start_worker(url, namespace, log_path)
    try:
        try:
            wait_until(
                lambda: redis_client.exists(*markers) == len(markers),
                WORKER_TIMEOUT_S,
                "the worker ran the jobs",
            )
        except AssertionError as error:
            raise AssertionError(f"{error}\nworker log:\n{log_path.read_text()}") from None
        worker.send_signal(signal.SIGTERM)
        exit_status = worker.wait(timeout=WORKER_TIMEOUT_S)
    finally:
        stop_process(worker)
    log = log_path.read_text(errors="replace")

    assert exit_status == 0, log
    assert "job succeeded" in log
    assert "runner stopped" in log
    assert PASSWORD not in log


@pytest.mark.parametrize("json_flag", [[], ["--json"]], ids=["table", "json"])
def test_info_hides_password(
    acl_server: RedisProcess, namespace: str, json_flag: list[str]
) -> None:
    url = tcp_url(acl_server, "app", PASSWORD)
    client = Client.from_url(url, namespace=namespace)
    client.enqueue(QUEUE, Note(text="listed"))
    runner = Runner(build_config(client, [QUEUE], [Note], SETTINGS), context=Recorder())

    # A running Runner makes `info` print a process entry as well as the queue.
    with started(runner):
        result = run_cli("info", "--url", url, "--namespace", namespace, *json_flag)
    client.close()

    assert result.returncode == 0, result.stderr
    assert runner.process_id in result.stdout
    assert PASSWORD not in result.stdout
    assert PASSWORD not in result.stderr


def test_client_repr_hides_password(acl_server: RedisProcess, namespace: str) -> None:
    client = Client.from_url(tcp_url(acl_server, "app", PASSWORD), namespace=namespace)
    client.redis.ping()

    texts = {
        "repr(client)": repr(client),
        "str(client)": str(client),
        "repr(client.redis)": repr(client.redis),
        "describe_server": describe_server(client.redis),
        "describe_connection": describe_connection(client.redis),
    }
    client.close()

    for label, text in texts.items():
        assert PASSWORD not in text, f"{label} shows the password: {text}"


INVALID_URLS = [
    pytest.param(f"redis://app:{PASSWORD}@127.0.0.1:notaport/0", id="port"),
    pytest.param(f"redis://app:{PASSWORD}@127.0.0.1/0?db=notanumber", id="db"),
    pytest.param(f"http://app:{PASSWORD}@127.0.0.1/0", id="scheme"),
    pytest.param(
        f"unix:///tmp/redis.sock?db=notanumber&password={PASSWORD}",
        id="query-password",
    ),
    pytest.param(
        f"redis://app:{PASSWORD}@[127.0.0.1/0",
        id="unclosed-bracket",
    ),
]


@pytest.mark.parametrize("url", INVALID_URLS)
def test_invalid_url_redacts_password(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Client.from_url(url)

    message = str(caught.value)
    assert PASSWORD not in message
    assert "***" in message or "<unparsable URL>" in message


@pytest.mark.parametrize(
    "url",
    [
        pytest.param(f"redis://app:{PASSWORD}@127.0.0.1:notaport/0", id="port"),
        pytest.param(
            f"unix:///tmp/redis.sock?db=notanumber&password={PASSWORD}",
            id="query-password",
        ),
    ],
)
def test_info_invalid_url_redacts_password(url: str) -> None:
    result = run_cli("info", "--url", url)

    assert result.returncode == 2, result.stderr
    assert PASSWORD not in result.stderr
    assert "***" in result.stderr


# Unix socket with a password


@pytest.mark.parametrize("form", ["userinfo", "query"])
def test_unix_password_runner_runs_jobs(
    unix_server: UnixServer, unix_observer: redis.Redis, namespace: str, form: str
) -> None:
    client = Client.from_url(unix_server.url(form), namespace=namespace)

    served, process_id = serve_two_jobs(client, unix_observer)
    client.close()

    assert served.events == ["claimed", "blocked"]
    assert "oxanus-heartbeat-ID" in served.names(process_id)
    assert f"oxanus-fetch-ID-{QUEUE.name}" in served.names(process_id)


@pytest.mark.parametrize("form", ["userinfo", "query"])
def test_unix_describe_hides_password(unix_server: UnixServer, namespace: str, form: str) -> None:
    client = Client.from_url(unix_server.url(form), namespace=namespace)
    client.redis.ping()

    server_text = describe_server(client.redis)
    connection_text = describe_connection(client.redis)
    client.close()

    assert server_text == f"unix:{unix_server.socket_path}"
    assert connection_text == f"unix://{unix_server.socket_path}"


def test_missing_database_names_fix(redis_url: str) -> None:
    connection = redis.Redis.from_url(redis_url, db=99)
    client = Client(connection, namespace="test-missing-db")

    with pytest.raises(ConfigurationError, match="has no database 99"):
        client.queues()
    connection.close()


@pytest.mark.parametrize(
    ("policy", "warning"),
    [
        ("allkeys-lru", "may evict job keys"),
        ("volatile-lru", "may evict keys with a time-to-live"),
        ("noeviction", None),
    ],
)
def test_eviction_policy_warning(
    policy: str, warning: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    server = start_server(extra_args=["--maxmemory-policy", policy])
    try:
        client = Client.from_url(server.url, namespace="test-eviction")
        config = build_config(client, [Queue("eviction")], [Note])
        with (
            caplog.at_level(logging.WARNING, logger="oxanus_sync.runner.runner"),
            started(Runner(config)),
        ):
            pass
        client.close()
    finally:
        server.stop()

    if warning is None:
        assert "maxmemory-policy" not in caplog.text
    else:
        assert f"maxmemory-policy is {policy}" in caplog.text
        assert warning in caplog.text
