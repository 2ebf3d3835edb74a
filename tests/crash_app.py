"""A Runner process for crash tests: `python tests/crash_app.py URL NAMESPACE [options]`.

Options set the Runner's lease, heartbeat, reclaim limit and the queue's concurrency, so a test
can make crash recovery fast, and `--family` serves the queue family `FAMILY_PREFIX` with that
concurrency as well (see `--help`). Jobs write what they saw into Redis under the
namespace, so a test can check what ran without sharing memory with this process:

- `CountRun` adds 1 to field `index` of the hash `<namespace>:runs`.
- `StampStart` appends the Redis server's time in ms to the list `<namespace>:starts`.
- `Probe`, `FailThenHang` and `KillOwnProcess` append one JSON event per step to the list
  `<namespace>:events`, with the attempt, the reclaims and this process's pid.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import signal
import sys
import time
from typing import Any

import redis

from oxanus_sync import (
    Client,
    Config,
    Context,
    Queue,
    QueueConfig,
    QueueFamily,
    Runner,
    RunnerSettings,
    Throttle,
    Worker,
)

QUEUE_NAME = "crash"
FAMILY_PREFIX = "crash-tenants"


def events_key(namespace: str) -> str:
    return f"{namespace}:events"


def runs_key(namespace: str) -> str:
    return f"{namespace}:runs"


def record_event(ctx: Context[Any], tag: str, step: str) -> None:
    """Append a JSON event for this attempt to `<namespace>:events`."""
    event = {
        "tag": tag,
        "step": step,
        "attempt": ctx.meta.attempt,
        "reclaims": ctx.meta.reclaims,
        "pid": os.getpid(),
        "queue": ctx.meta.queue,
    }
    connection: redis.Redis = ctx.shared["redis"]
    connection.rpush(events_key(ctx.shared["namespace"]), json.dumps(event))


class CountRun(Worker, name="tests.crash.CountRun"):
    """Adds 1 to field `index` of `<namespace>:runs`, then sleeps 0 to `max_sleep_ms` ms."""

    index: int
    max_sleep_ms: int = 20

    def process(self, ctx: Context[Any]) -> None:
        connection: redis.Redis = ctx.shared["redis"]
        connection.hincrby(runs_key(ctx.shared["namespace"]), str(self.index), 1)
        time.sleep(random.uniform(0, self.max_sleep_ms) / 1000)


def starts_key(namespace: str) -> str:
    return f"{namespace}:starts"


class StampStart(Worker, name="tests.crash.StampStart"):
    """Appends the Redis server's time in ms at its start to `<namespace>:starts`."""

    index: int

    def process(self, ctx: Context[Any]) -> None:
        connection: redis.Redis = ctx.shared["redis"]
        seconds, microseconds = connection.time()
        connection.rpush(starts_key(ctx.shared["namespace"]), seconds * 1000 + microseconds // 1000)


class Probe(Worker, name="tests.crash.Probe"):
    """Records a "start" event, sleeps `seconds`, records an "end" event."""

    tag: str
    seconds: float

    def process(self, ctx: Context[Any]) -> None:
        record_event(ctx, self.tag, "start")
        time.sleep(self.seconds)
        record_event(ctx, self.tag, "end")


class UniqueProbe(Probe, name="tests.crash.UniqueProbe"):
    """A Probe that is unique by its tag."""

    def unique_key(self) -> str:
        return self.tag


class FailThenHang(Worker, name="tests.crash.FailThenHang"):
    """Raises on every attempt except the first run of attempt `hang_attempt`, which sleeps
    `hang_s` so that a test can kill its Runner. Retries wait 0 s, at most 2 of them."""

    tag: str
    hang_attempt: int
    hang_s: float
    max_retries = 2

    def retry_delay(self, attempt: int) -> float | None:
        return 0.0

    def process(self, ctx: Context[Any]) -> None:
        record_event(ctx, self.tag, "start")
        if ctx.meta.attempt == self.hang_attempt and ctx.meta.reclaims == 0:
            time.sleep(self.hang_s)
            record_event(ctx, self.tag, "end")
            return
        raise RuntimeError(f"attempt {ctx.meta.attempt} of {self.tag} fails on purpose")


class KillOwnProcess(Worker, name="tests.crash.KillOwnProcess"):
    """Records a "start" event, then sends SIGKILL to its own Runner process."""

    tag: str

    def process(self, ctx: Context[Any]) -> None:
        record_event(ctx, self.tag, "start")
        os.kill(os.getpid(), signal.SIGKILL)


JOB_TYPES: tuple[type[Worker], ...] = (
    CountRun,
    StampStart,
    Probe,
    UniqueProbe,
    FailThenHang,
    KillOwnProcess,
)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run a Runner for the crash tests.")
    parser.add_argument("url", help="Redis URL")
    parser.add_argument("namespace", help="key prefix of the test")
    parser.add_argument("--concurrency", type=int, default=1, help="threads of the queue")
    parser.add_argument("--lease", type=float, help="lease_s in seconds (default: the library's)")
    parser.add_argument(
        "--heartbeat", type=float, help="heartbeat_interval_s in seconds (default: the library's)"
    )
    parser.add_argument(
        "--max-reclaims",
        type=int,
        help="max_reclaims, the reclaims a job may have before it goes dead (default: 5)",
    )
    parser.add_argument(
        "--throttle",
        nargs=2,
        metavar=("LIMIT", "WINDOW_S"),
        help="throttle the queue to LIMIT starts per WINDOW_S seconds",
    )
    parser.add_argument(
        "--family", action="store_true", help=f"also serve the queue family {FAMILY_PREFIX!r}"
    )
    parser.add_argument("--log-level", default="INFO", help="logging level name")
    return parser.parse_args(argv)


def build_settings(args: argparse.Namespace) -> RunnerSettings:
    """Return RunnerSettings with the library's defaults except the options given."""
    overrides: dict[str, Any] = {}
    if args.lease is not None:
        overrides["lease_s"] = args.lease
    if args.heartbeat is not None:
        overrides["heartbeat_interval_s"] = args.heartbeat
    if args.max_reclaims is not None:
        overrides["max_reclaims"] = args.max_reclaims
    return RunnerSettings(**overrides)


def main() -> None:
    args = parse_args(sys.argv[1:])
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(name)s %(message)s")

    client = Client.from_url(args.url, namespace=args.namespace)
    config = Config(client=client, settings=build_settings(args))
    throttle = None
    if args.throttle is not None:
        throttle = Throttle(limit=int(args.throttle[0]), window_s=float(args.throttle[1]))
    queue_config = QueueConfig(concurrency=args.concurrency, throttle=throttle)
    config.register_queue(Queue(QUEUE_NAME, queue_config))
    if args.family:
        config.register_family(
            QueueFamily(FAMILY_PREFIX, QueueConfig(concurrency=args.concurrency))
        )
    for job_type in JOB_TYPES:
        config.register(job_type)

    shared = {"redis": redis.Redis.from_url(args.url), "namespace": args.namespace}
    Runner(config, context=shared).run_forever()


if __name__ == "__main__":
    main()
