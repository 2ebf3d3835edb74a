"""Helpers shared by the engine tests: deadline polling, a thread-safe event log for jobs,
and building and running in-process Runners."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from oxanus_sync import Client, Config, Queue, Runner, RunnerSettings, Worker

POLL_INTERVAL_S = 0.01


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
