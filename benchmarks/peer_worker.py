"""The worker subprocess of the peer benchmarks, timed the same way for every peer.

    python -m benchmarks.peer_worker MODULE drain --url URL --concurrency 8 --count N
    python -m benchmarks.peer_worker MODULE serve --url URL --concurrency 8

MODULE is a peer module such as `benchmarks.peer_rq`. It defines
`build_worker(url, concurrency, scheduler, on_complete) -> PeerWorker`: a worker of that
system in this process, which calls `on_complete()` once for each job it has finished,
after the system's own bookkeeping for the job (acknowledgement, result, statistics).

`drain` takes `time.perf_counter()` just before `PeerWorker.run()`, and a monitor thread
reads the completion counter every 2 ms until it reaches `--count`. The monitor then reads
the clock, this process's CPU time (every thread) and the Redis server's CPU time from INFO,
and asks the worker to stop. The process prints one JSON line on stdout: {"elapsed_s",
"worker_cpu_s", "redis_cpu_s", "processed"}. `serve` runs the worker with its scheduler
until the worker's own SIGTERM handling stops it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import redis

from benchmarks.harness import DRAIN_POLL_INTERVAL_S, redis_cpu_s
from benchmarks.peer import set_results_url


class PeerWorker(Protocol):
    def run(self) -> None:
        """Run the worker in the calling thread, which is the main thread, until it stops."""

    def request_stop(self) -> None:
        """Stop the worker as its usual shutdown signal would. Called from another thread."""


BuildWorker = Callable[[str, int, bool, Callable[[], None]], PeerWorker]


class CompletionCounter:
    """The number of jobs finished, incremented from the worker's threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def increment(self) -> None:
        with self._lock:
            self.value += 1


def drain(
    worker: PeerWorker, counter: CompletionCounter, url: str, count: int, timeout_s: float
) -> dict[str, Any]:
    """Run `worker` until `counter` reaches `count`, then stop it and return the timings."""
    connection = redis.Redis.from_url(url)
    outcome: dict[str, Any] = {}
    run_returned = threading.Event()

    def monitor() -> None:
        deadline = started + timeout_s
        while counter.value < count:
            if run_returned.is_set():
                outcome["error"] = f"the worker stopped after {counter.value} of {count} jobs"
                return
            if time.perf_counter() > deadline:
                outcome["error"] = f"{counter.value} of {count} jobs done in {timeout_s:g} s"
                worker.request_stop()
                return
            time.sleep(DRAIN_POLL_INTERVAL_S)
        outcome["elapsed_s"] = time.perf_counter() - started
        outcome["worker_cpu_s"] = time.process_time() - cpu_before
        outcome["redis_cpu_s"] = redis_cpu_s(connection) - redis_cpu_before
        worker.request_stop()

    redis_cpu_before = redis_cpu_s(connection)
    cpu_before = time.process_time()
    started = time.perf_counter()
    monitor_thread = threading.Thread(target=monitor, name="drain-monitor", daemon=True)
    monitor_thread.start()
    try:
        worker.run()
    finally:
        run_returned.set()
        monitor_thread.join()

    if "error" in outcome:
        raise TimeoutError(outcome["error"])
    outcome["processed"] = counter.value
    return outcome


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.peer_worker",
        description="Run the worker of a peer job system for the benchmarks.",
    )
    parser.add_argument("module", help="peer module, for example benchmarks.peer_rq")
    parser.add_argument("mode", choices=["drain", "serve"])
    parser.add_argument("--url", required=True, help="Redis URL")
    parser.add_argument("--concurrency", type=int, default=8, help="jobs run at once")
    parser.add_argument("--count", type=int, default=0, help="drain: number of jobs to wait for")
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="drain: maximum wait in seconds"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Warnings and errors only, as for the oxanus_sync Runner.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    set_results_url(args.url)
    build_worker: BuildWorker = importlib.import_module(args.module).build_worker

    counter = CompletionCounter()
    if args.mode == "serve":
        build_worker(args.url, args.concurrency, True, counter.increment).run()
        result: dict[str, Any] = {"processed": counter.value}
    else:
        worker = build_worker(args.url, args.concurrency, False, counter.increment)
        result = drain(worker, counter, args.url, args.count, args.timeout)

    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
