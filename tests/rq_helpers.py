"""Fixtures-level helpers of the `oxanus_sync.rq` tests: a client and workers in threads."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from oxanus_sync import RunnerSettings
from oxanus_sync.rq import Worker

# Short leases so that crash tests finish quickly; the lease bound is still 4 heartbeats.
FAST = RunnerSettings(lease_s=2.0, heartbeat_interval_s=0.5, shutdown_timeout_s=5.0)


def burst(queues: Any, connection: Any, **options: Any) -> bool:
    """Run a burst worker in this thread until the queues are empty; return work()'s value."""
    max_jobs = options.pop("max_jobs", None)
    worker = Worker(queues, connection=connection, settings=FAST, **options)
    return worker.work(burst=True, max_jobs=max_jobs)


@contextmanager
def worker_thread(queues: Any, connection: Any, **options: Any) -> Iterator[Worker]:
    """Run a worker in a background thread for the duration of the block."""
    worker = Worker(queues, connection=connection, settings=FAST, **options)
    thread = threading.Thread(target=worker.work, name="rq-test-worker")
    thread.start()
    try:
        yield worker
    finally:
        worker.request_stop()
        thread.join(timeout=20)
        assert not thread.is_alive(), "the worker thread did not stop"
