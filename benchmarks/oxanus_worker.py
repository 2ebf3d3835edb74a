"""The job types of the oxanus_sync benchmarks, and the Runner process that executes them.

`benchmarks.oxanus` starts this module as a subprocess, so that the Runner does not share
the GIL of the enqueueing process:

    python -m benchmarks.oxanus_worker drain --url URL --namespace NS --concurrency 8 --count N
    python -m benchmarks.oxanus_worker serve --url URL --namespace NS --concurrency 8

`drain` times itself from the call to `Runner.start()` until the Runner's own counter of
processed jobs reaches `--count`, then stops the Runner and prints one JSON line on stdout:
{"elapsed_s", "worker_cpu_s", "redis_cpu_s", "processed", "succeeded"}. The CPU times cover
the same span: this process's threads, and the Redis server's from INFO. `serve` runs until
SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from typing import Any

import redis

from oxanus_sync import Client, Config, Context, Queue, QueueConfig, Runner, Worker

QUEUE_NAME = "bench"

DRAIN_POLL_INTERVAL_S = 0.002
"""Pause between two reads of the Runner's processed counter in `drain` mode."""


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


def build_runner(url: str, namespace: str, concurrency: int) -> Runner:
    client = Client.from_url(url, namespace=namespace)
    config = Config(client=client)
    config.register_queue(Queue(QUEUE_NAME, QueueConfig(concurrency=concurrency)))
    for job_type in (Noop, Sleep, RecordStart):
        config.register(job_type)
    return Runner(config, context=redis.Redis.from_url(url))


def drain(runner: Runner, count: int, timeout_s: float) -> dict[str, float | int]:
    """Start `runner`, wait until it has processed `count` jobs, then stop it and return timings."""
    connection = runner.client.redis
    redis_cpu_before = _redis_cpu_s(connection)
    cpu_before = time.process_time()
    started = time.perf_counter()
    runner.start()
    deadline = started + timeout_s
    while runner.stats.processed < count:
        if time.perf_counter() > deadline:
            runner.stop()
            raise TimeoutError(
                f"the Runner processed {runner.stats.processed} of {count} jobs "
                f"in {timeout_s:g} s"
            )
        time.sleep(DRAIN_POLL_INTERVAL_S)
    elapsed_s = time.perf_counter() - started
    worker_cpu_s = time.process_time() - cpu_before
    redis_cpu_s = _redis_cpu_s(connection) - redis_cpu_before

    stats = runner.stop()
    return {
        "elapsed_s": elapsed_s,
        "worker_cpu_s": worker_cpu_s,
        "redis_cpu_s": redis_cpu_s,
        "processed": stats.processed,
        "succeeded": stats.succeeded,
    }


def _redis_cpu_s(connection: redis.Redis) -> float:
    """Return the CPU time, user plus system, that the Redis server process has used."""
    info = connection.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.oxanus_worker",
        description="Run the oxanus_sync Runner of the benchmarks.",
    )
    parser.add_argument("mode", choices=["drain", "serve"])
    parser.add_argument("--url", required=True, help="Redis URL")
    parser.add_argument("--namespace", required=True, help="oxanus_sync key namespace")
    parser.add_argument("--concurrency", type=int, default=8, help="threads of the queue")
    parser.add_argument(
        "--count", type=int, default=0, help="drain: number of jobs to wait for"
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="drain: maximum wait in seconds"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Warnings and errors only, so the Runner's per-job INFO lines cost one level check each.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    runner = build_runner(args.url, args.namespace, args.concurrency)

    if args.mode == "serve":
        stats = runner.run_forever()
        result: dict[str, float | int] = {"processed": stats.processed}
    else:
        result = drain(runner, args.count, args.timeout)

    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
