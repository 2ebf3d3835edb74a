"""A job orphaned by a killed `oxanus_sync.rq` worker runs again on another worker."""

from __future__ import annotations

import signal
import sys
import time

import redis

from oxanus_sync import Client
from oxanus_sync.rq import Queue
from oxanus_sync.rq.job import JobStatus
from tests import rq_jobs
from tests.helpers import RunnerProcess, wait_until

# The CLI worker's lease is 5 s and its heartbeat 1 s, so a reclaim takes at most about 6 s
# after the killed worker's last beat. The bound below leaves room for a slow machine.
RECLAIM_BOUND_S = 30.0


def _worker(redis_url: str, namespace: str) -> RunnerProcess:
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
            "-v",
        ]
    )


def test_killed_worker_job_runs_again(redis_url: str, namespace: str) -> None:
    client = Client(redis.Redis.from_url(redis_url), namespace=namespace)
    queue = Queue("default", connection=client)
    log = f"{namespace}:log"
    gate = f"{namespace}:gate"
    job = queue.enqueue(rq_jobs.record_pid_and_wait, log, gate)

    first = _worker(redis_url, namespace)
    second = None
    try:
        wait_until(lambda: client.redis.llen(log) == 1, 30, "the first worker started the job")
        assert job.get_status() == JobStatus.STARTED
        first.process.send_signal(signal.SIGKILL)
        first.wait(timeout_s=10)
        client.redis.set(gate, 1)

        killed_at = time.monotonic()
        second = _worker(redis_url, namespace)
        wait_until(lambda: job.get_status() == JobStatus.FINISHED, RECLAIM_BOUND_S, "rerun")
        assert time.monotonic() - killed_at < RECLAIM_BOUND_S
        pids = [int(pid) for pid in client.redis.lrange(log, 0, -1)]
        assert pids == [first.pid, second.pid]
        assert job.return_value() == second.pid
        assert job.id not in queue.failed_job_registry
        assert client.stats(["default"])[0].succeeded == 1
    finally:
        for process in (first, second):
            if process is not None and process.running():
                process.kill()
                process.wait(timeout_s=10)
        client.close()
