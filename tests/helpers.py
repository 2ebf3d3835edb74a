"""Helpers shared by the engine tests: deadline polling, a thread-safe event log for jobs,
and building and running in-process Runners."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from oxanus_sync import Client, Config, Queue, Runner, RunnerSettings, Worker
from oxanus_sync.storage.records import NewJob
from oxanus_sync.storage.store import Storage

POLL_INTERVAL_S = 0.01
ROOT = Path(__file__).resolve().parent.parent


def wait_until(predicate: Callable[[], object], timeout_s: float, message: str) -> None:
    """Poll `predicate` until it returns a true value; fail with `message` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting until {message}")
        time.sleep(POLL_INTERVAL_S)


class Recorder:
    """A thread-safe event log. Tests pass it as the Runner's context, so jobs reach it as
    `ctx.shared` and append what they saw."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[Any] = []

    def add(self, event: Any) -> None:
        with self._lock:
            self._events.append(event)

    def events(self) -> list[Any]:
        """Return a copy of the events in the order they were added."""
        with self._lock:
            return list(self._events)

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)


def build_config(
    client: Client,
    queues: Iterable[Queue],
    job_types: Iterable[type[Worker]],
    settings: RunnerSettings | None = None,
) -> Config:
    """Return a Config that serves `queues` and runs `job_types`."""
    config = Config(client=client, settings=settings)
    for queue in queues:
        config.register_queue(queue)
    for job_type in job_types:
        config.register(job_type)
    return config


@contextmanager
def started(runner: Runner) -> Iterator[Runner]:
    """Run `runner` in the background for the duration of the block, then stop it."""
    runner.start()
    try:
        yield runner
    finally:
        runner.stop()


class RunnerProcess:
    """A Runner subprocess, run from the repository root, whose combined output a reader
    thread collects."""

    def __init__(self, args: list[str]) -> None:
        self.process = subprocess.Popen(
            args,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return "".join(self.lines)

    def running(self) -> bool:
        return self.process.poll() is None

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def kill(self) -> None:
        """Send SIGKILL and wait for the process to exit."""
        self.process.kill()
        self.process.wait(timeout=10)

    def wait(self, timeout_s: float) -> int:
        """Wait for the process to exit and return its status, then close its output pipe."""
        code = self.process.wait(timeout=timeout_s)
        self._reader.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return code


def leased_storage(client: Any, namespace: str, queues: list[str], process_id: str) -> Storage:
    """Return a Storage of `namespace` in which `process_id` has a lease on `queues`."""
    storage = Storage(client, namespace)
    storage.heartbeat(process_id, queues, 30_000, {"started_at": 0})
    return storage


def enqueue_ids(storage: Storage, queue: str, *ids: str) -> None:
    """Enqueue one job per id to `queue`, with a payload that names the id."""
    jobs = [NewJob(job_id, f'{{"job": "{job_id}"}}'.encode()) for job_id in ids]
    storage.enqueue(queue, jobs, ("now", 0))
