"""Job functions for the tests of `oxanus_sync.rq`, importable by workers as tests.rq_jobs."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from oxanus_sync.rq import get_current_job


def add(x: int, y: int = 0) -> int:
    return x + y


def echo(*args: Any, **kwargs: Any) -> list[Any]:
    return [list(args), kwargs]


def fail(message: str = "boom") -> None:
    raise ValueError(message)


def record(log_key: str, value: Any) -> Any:
    """Append "job id:value" to the Redis list `log_key`, through the current job's connection."""
    job = get_current_job()
    assert job is not None
    job.connection.rpush(log_key, f"{job.id}:{value}")
    return value


def current_job_id(delay_s: float = 0.0) -> str | None:
    time.sleep(delay_s)
    job = get_current_job()
    return None if job is None else job.id


def progress(steps: int) -> int:
    job = get_current_job()
    assert job is not None
    for step in range(1, steps + 1):
        job.meta["step"] = step
        job.save_meta()
    return steps


def sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def busy_loop(seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass
    return "finished"


def wait_for_key(key: str, timeout_s: float = 30.0) -> str:
    """Block until the Redis key `key` exists, so a test decides when the job ends."""
    job = get_current_job()
    assert job is not None
    deadline = time.monotonic() + timeout_s
    while not job.connection.exists(key):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{key} never appeared")
        time.sleep(0.01)
    return "released"


def thread_name() -> str:
    return threading.current_thread().name


def pid() -> int:
    return os.getpid()


def on_success(job: Any, connection: Any, result: Any, *args: Any, **kwargs: Any) -> None:
    connection.rpush(job.meta["log"], f"success:{result}")


def on_failure(job: Any, connection: Any, exc_type: Any, exc_value: Any, tb: Any) -> None:
    connection.rpush(job.meta["log"], f"failure:{exc_type.__name__}")


def failing_callback(job: Any, connection: Any, result: Any, *args: Any, **kwargs: Any) -> None:
    raise RuntimeError("callback broke")


class Tasks:
    @classmethod
    def double(cls, x: int) -> int:
        return 2 * x


def record_pid_and_wait(log_key: str, gate_key: str) -> int:
    """Append this process's id to `log_key`, then wait until `gate_key` exists."""
    job = get_current_job()
    assert job is not None
    job.connection.rpush(log_key, os.getpid())
    wait_for_key(gate_key, timeout_s=60.0)
    return os.getpid()


def until_stop_requested(timeout_s: float = 30.0) -> str:
    """Sleep in short steps until the current job is asked to stop."""
    job = get_current_job()
    assert job is not None
    deadline = time.monotonic() + timeout_s
    while not job.is_stop_requested():
        if time.monotonic() > deadline:
            return "never asked"
        time.sleep(0.05)
    job.connection.rpush(job.meta["log"], "stop seen")
    return "stopped"
