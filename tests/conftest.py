"""Shared fixtures: a Redis server per test session, a client, a key namespace per test,
Runner subprocesses of tests/crash_app.py, and a check for threads that tests leave running.

Tests use the server at REDIS_URL when it is set. Otherwise the session starts a private
server (see oxanus_sync.devserver.find_or_start) and stops it at the end.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis

from oxanus_sync.devserver import find_or_start
from tests.helpers import RunnerProcess

THREAD_LEAK_TIMEOUT_SECONDS = 2.0
"""Maximum time the threads that a test started get to exit after the test ends."""

_DELETE_BATCH_SIZE = 500

_redis_source_key = pytest.StashKey[str]()


@pytest.fixture(scope="session")
def redis_url(pytestconfig: pytest.Config) -> Iterator[str]:
    """URL of the Redis server shared by the whole test session."""
    with find_or_start(os.environ.get("REDIS_URL")) as server:
        pytestconfig.stash[_redis_source_key] = server.source
        yield server.url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client of the session's Redis server, closed after the test."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def namespace(redis_client: redis.Redis) -> Iterator[str]:
    """A key prefix unique to the test, such as "test-1a2b3c4d".

    Tests share one server and never flush it. After the test, every key that contains
    the prefix is deleted, including keys that wrap it in a hash tag such as "{test-1a2b3c4d}".
    """
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    yield prefix

    batch: list[bytes] = []
    for key in redis_client.scan_iter(match=f"*{prefix}*", count=_DELETE_BATCH_SIZE):
        batch.append(key)
        if len(batch) >= _DELETE_BATCH_SIZE:
            redis_client.delete(*batch)
            batch.clear()

    if batch:
        redis_client.delete(*batch)


@pytest.fixture
def start_runner(redis_url: str, namespace: str) -> Iterator[Callable[..., RunnerProcess]]:
    """Start crash_app Runners with the given command-line options; kill leftovers at teardown."""
    started: list[RunnerProcess] = []

    def start(*options: str) -> RunnerProcess:
        args = [sys.executable, "tests/crash_app.py", redis_url, namespace, *options]
        runner = RunnerProcess(args)
        started.append(runner)
        return runner

    yield start
    for runner in started:
        if runner.running():
            runner.process.kill()
        runner.wait(10)


@pytest.fixture(autouse=True)
def _check_thread_leaks() -> Iterator[None]:
    """Fail the test if a non-daemon thread it started is still alive after it ends.

    Threads get THREAD_LEAK_TIMEOUT_SECONDS to exit. A session- or module-scoped fixture
    that starts a thread is reported against the first test that uses it.
    """
    threads_before = set(threading.enumerate())
    yield

    deadline = time.monotonic() + THREAD_LEAK_TIMEOUT_SECONDS
    leaked = _new_non_daemon_threads(threads_before)
    for thread in leaked:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))

    still_alive = [thread.name for thread in _new_non_daemon_threads(threads_before)]
    assert not still_alive, (
        f"Non-daemon threads started by the test are still alive "
        f"{THREAD_LEAK_TIMEOUT_SECONDS:g} s after it ended: {', '.join(still_alive)}. "
        "Stop and join them before the test returns."
    )


def _new_non_daemon_threads(threads_before: set[threading.Thread]) -> list[threading.Thread]:
    return [
        thread
        for thread in threading.enumerate()
        if thread not in threads_before and not thread.daemon and thread.is_alive()
    ]


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Print which Redis server the tests used, if any test used one."""
    source = config.stash.get(_redis_source_key, None)
    if source is not None:
        terminalreporter.write_line(f"Redis server used by the tests: {source}")
