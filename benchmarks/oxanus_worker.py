"""The job types of the oxanus_sync benchmarks, and the Runner process that executes them.

`benchmarks.oxanus` starts this module as a subprocess, so that the Runner does not share
the GIL of the enqueueing process:

    python -m benchmarks.oxanus_worker drain --url URL --namespace NS --concurrency 8 --count N
    python -m benchmarks.oxanus_worker serve --url URL --namespace NS --concurrency 8
    python -m benchmarks.oxanus_worker serve --url URL --namespace NS --family

`drain` times itself from the call to `Runner.start()` until the Runner's own counter of
processed jobs reaches `--count`, then stops the Runner and prints one JSON line on stdout:
{"elapsed_s", "worker_cpu_s", "redis_cpu_s", "processed", "succeeded"}. The CPU times cover
the same span: this process's threads, and the Redis server's from INFO. With
`--warm-count N` the line also has the resident set size of this process, in bytes, just
before `Runner.start()` ("rss_start_bytes"), once N jobs are processed ("rss_warm_bytes")
and at the end ("rss_end_bytes").

`drain --processes N` with N > 1 forks N Runner processes instead. Each builds its Runner
and waits. The clock starts when this process tells them all to start, and stops when the
sum of their processed counters, which they copy to shared memory every 2 ms, reaches
`--count`. "worker_cpu_s" is then the sum over the N processes. `serve` runs until SIGTERM.
With `--family` the Runner serves the queue family `FAMILY_PREFIX` instead of the queue.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import queue
import sys
import time
from multiprocessing.sharedctypes import SynchronizedArray
from typing import Any

import redis

from benchmarks.harness import DRAIN_POLL_INTERVAL_S, redis_cpu_s, rss_bytes
from oxanus_sync import Client, Config, Context, Queue, QueueConfig, QueueFamily, Runner, Worker

QUEUE_NAME = "bench"
FAMILY_PREFIX = "bench-tenants"

CHILD_READY_TIMEOUT_S = 60.0
"""Maximum wait for the Runner processes of a multi-process drain to build their Runners."""


class Noop(Worker, name="bench.noop"):
    """A job that does nothing; `index` only gives the payload an argument to decode."""

    index: int

    def process(self, ctx: Context[Any]) -> None:
        pass


class Sleep(Worker, name="bench.sleep"):
    """A job that sleeps, which releases the GIL as an I/O-bound job would."""

    seconds: float

    def process(self, ctx: Context[Any]) -> None:
        time.sleep(self.seconds)


class RecordStart(Worker, name="bench.record_start"):
    """A job that pushes `time.time() - reference`, in seconds, to the list `result_key`.

    The time is taken first thing in `process`. `ctx.shared` is a `redis.Redis` connection.
    """

    reference: float
    result_key: str

    def process(self, ctx: Context[redis.Redis]) -> None:
        started = time.time()
        ctx.shared.rpush(self.result_key, repr(started - self.reference))


def build_runner(url: str, namespace: str, concurrency: int, *, family: bool = False) -> Runner:
    client = Client.from_url(url, namespace=namespace)
    config = Config(client=client)
    if family:
        config.register_family(QueueFamily(FAMILY_PREFIX, QueueConfig(concurrency=concurrency)))
    else:
        config.register_queue(Queue(QUEUE_NAME, QueueConfig(concurrency=concurrency)))
    for job_type in (Noop, Sleep, RecordStart):
        config.register(job_type)
    return Runner(config, context=redis.Redis.from_url(url))


def drain(
    runner: Runner, count: int, timeout_s: float, warm_count: int = 0
) -> dict[str, float | int]:
    """Start `runner`, wait until it has processed `count` jobs, then stop it and return timings.

    With `warm_count` > 0, also return the resident set size of this process before the
    start, once `warm_count` jobs are processed and at the end.
    """
    connection = runner.client.redis
    rss_start = rss_bytes() if warm_count > 0 else 0
    rss_warm: int | None = None
    redis_cpu_before = redis_cpu_s(connection)
    cpu_before = time.process_time()
    started = time.perf_counter()
    runner.start()
    deadline = started + timeout_s
    while runner.stats.processed < count:
        if time.perf_counter() > deadline:
            runner.stop()
            raise TimeoutError(
                f"the Runner processed {runner.stats.processed} of {count} jobs in {timeout_s:g} s"
            )
        if rss_warm is None and warm_count > 0 and runner.stats.processed >= warm_count:
            rss_warm = rss_bytes()
        time.sleep(DRAIN_POLL_INTERVAL_S)
    elapsed_s = time.perf_counter() - started
    worker_cpu_s = time.process_time() - cpu_before
    redis_cpu_s_used = redis_cpu_s(connection) - redis_cpu_before

    result: dict[str, float | int] = {}
    if warm_count > 0:
        rss_end = rss_bytes()
        result["rss_start_bytes"] = rss_start
        result["rss_warm_bytes"] = rss_warm if rss_warm is not None else rss_end
        result["rss_end_bytes"] = rss_end

    stats = runner.stop()
    result.update(
        elapsed_s=elapsed_s,
        worker_cpu_s=worker_cpu_s,
        redis_cpu_s=redis_cpu_s_used,
        processed=stats.processed,
        succeeded=stats.succeeded,
    )
    return result


def drain_processes(
    url: str, namespace: str, concurrency: int, count: int, processes: int, timeout_s: float
) -> dict[str, float | int]:
    """Drain `count` jobs with `processes` forked Runner processes and return timings.

    This process builds no Runner and opens no Redis connection before it forks.
    """
    context = multiprocessing.get_context("fork")
    counters = context.Array("q", processes, lock=False)
    ready = context.Semaphore(0)
    go = context.Event()
    stop = context.Event()
    results: multiprocessing.Queue[tuple[float, int, int]] = context.Queue()
    children = [
        context.Process(
            target=_drain_child,
            args=(url, namespace, concurrency, slot, counters, ready, go, stop, results),
            name=f"runner-{slot}",
        )
        for slot in range(processes)
    ]
    for child in children:
        child.start()

    try:
        for _ in children:
            if not ready.acquire(timeout=CHILD_READY_TIMEOUT_S):
                raise TimeoutError(
                    f"the {processes} Runner processes were not ready "
                    f"in {CHILD_READY_TIMEOUT_S:g} s"
                )

        connection = redis.Redis.from_url(url)
        redis_cpu_before = redis_cpu_s(connection)
        started = time.perf_counter()
        go.set()
        deadline = started + timeout_s
        while sum(counters) < count:
            if time.perf_counter() > deadline:
                raise TimeoutError(
                    f"the Runners processed {sum(counters)} of {count} jobs in {timeout_s:g} s"
                )
            time.sleep(DRAIN_POLL_INTERVAL_S)
        elapsed_s = time.perf_counter() - started
        redis_cpu_s_used = redis_cpu_s(connection) - redis_cpu_before
    finally:
        stop.set()

    worker_cpu_s = 0.0
    processed = succeeded = 0
    for _ in children:
        try:
            child_cpu_s, child_processed, child_succeeded = results.get(timeout=60)
        except queue.Empty as error:
            raise TimeoutError("a Runner process did not report its statistics") from error
        worker_cpu_s += child_cpu_s
        processed += child_processed
        succeeded += child_succeeded
    for child in children:
        child.join()
    return {
        "elapsed_s": elapsed_s,
        "worker_cpu_s": worker_cpu_s,
        "redis_cpu_s": redis_cpu_s_used,
        "processed": processed,
        "succeeded": succeeded,
    }


def _drain_child(
    url: str,
    namespace: str,
    concurrency: int,
    slot: int,
    counters: SynchronizedArray[int],
    ready: Any,
    go: Any,
    stop: Any,
    results: multiprocessing.Queue[tuple[float, int, int]],
) -> None:
    """Run one Runner of a multi-process drain, copying its processed counter to `counters`."""
    runner = build_runner(url, namespace, concurrency)
    ready.release()
    go.wait()
    cpu_before = time.process_time()
    runner.start()
    while not stop.is_set():
        counters[slot] = runner.stats.processed
        time.sleep(DRAIN_POLL_INTERVAL_S)
    worker_cpu_s = time.process_time() - cpu_before
    stats = runner.stop()
    results.put((worker_cpu_s, stats.processed, stats.succeeded))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.oxanus_worker",
        description="Run the oxanus_sync Runner of the benchmarks.",
    )
    parser.add_argument("mode", choices=["drain", "serve"])
    parser.add_argument("--url", required=True, help="Redis URL")
    parser.add_argument("--namespace", required=True, help="oxanus_sync key namespace")
    parser.add_argument("--concurrency", type=int, default=8, help="threads of the queue")
    parser.add_argument("--count", type=int, default=0, help="drain: number of jobs to wait for")
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="drain: maximum wait in seconds"
    )
    parser.add_argument(
        "--processes", type=int, default=1, help="drain: number of Runner processes"
    )
    parser.add_argument(
        "--warm-count",
        type=int,
        default=0,
        help="drain with one process: also report the resident set size after this many jobs",
    )
    parser.add_argument(
        "--family",
        action="store_true",
        help=f"serve the queue family {FAMILY_PREFIX!r} instead of the queue {QUEUE_NAME!r}",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Warnings and errors only, so the Runner's per-job INFO lines cost one level check each.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    if args.mode == "drain" and args.processes > 1:
        result = drain_processes(
            args.url, args.namespace, args.concurrency, args.count, args.processes, args.timeout
        )
        print(json.dumps(result), flush=True)
        return 0

    runner = build_runner(args.url, args.namespace, args.concurrency, family=args.family)
    if args.mode == "serve":
        stats = runner.run_forever()
        result = {"processed": stats.processed}
    else:
        result = drain(runner, args.count, args.timeout, args.warm_count)

    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
