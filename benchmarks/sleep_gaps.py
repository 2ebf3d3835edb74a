"""Time the gap between consecutive jobs of each Runner thread in a drain of sleeping jobs.

    python -m benchmarks.sleep_gaps [--count N] [--concurrency N] [--sleep-ms MS]

Starts a private redis-server (see `oxanus_sync.devserver`), enqueues --count jobs that each
sleep --sleep-ms, and drains them with a Runner in this process. Each job notes, on its own
thread, when its sleep started and ended and the thread's CPU time at both points. The report
gives the rate as a share of the ideal and the mean sleep. It also gives the gap from the end of
one job's sleep to the start of the next one's on the same thread, and the thread's CPU time in
that gap. The gap is what the Runner adds to each job, which `drain_sleep_10ms` measures from
outside.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import threading
import time
import uuid
from typing import Any, NamedTuple

import redis

from benchmarks.harness import DRAIN_POLL_INTERVAL_S
from oxanus_sync import Client, Config, Context, Queue, QueueConfig, Runner, Worker
from oxanus_sync.devserver import DevServerError, find_or_start

DRAIN_TIMEOUT_S = 300.0


class _Sleep(NamedTuple):
    thread: int
    started: float
    ended: float
    cpu_started: float
    cpu_ended: float


_sleeps: list[_Sleep] = []


class TimedSleep(Worker, name="bench.timed_sleep"):
    """A job that sleeps and notes when, and at what thread CPU time, its sleep began and ended."""

    seconds: float

    def process(self, ctx: Context[Any]) -> None:
        cpu_started = time.thread_time()
        started = time.perf_counter()
        time.sleep(self.seconds)
        ended = time.perf_counter()
        _sleeps.append(
            _Sleep(threading.get_ident(), started, ended, cpu_started, time.thread_time())
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.sleep_gaps",
        description="Time what a Runner thread spends between two sleeping jobs.",
    )
    parser.add_argument("--count", type=int, default=4000, help="jobs to drain")
    parser.add_argument("--concurrency", type=int, default=8, help="threads of the queue")
    parser.add_argument("--sleep-ms", type=float, default=10.0, help="sleep of each job in ms")
    return parser.parse_args(argv)


def drain(url: str, count: int, concurrency: int, sleep_s: float) -> tuple[float, float]:
    """Enqueue `count` sleeping jobs and drain them with an in-process Runner.

    Return the `perf_counter()` value at the call to `Runner.start()`, and the seconds the
    drain took from there.
    """
    client = Client.from_url(url, namespace=f"bench-gaps-{uuid.uuid4().hex[:8]}")
    queue = Queue("gaps", QueueConfig(concurrency=concurrency))
    client.enqueue_many(queue, [TimedSleep(seconds=sleep_s) for _ in range(count)])

    config = Config(client=client)
    config.register_queue(queue)
    config.register(TimedSleep)
    runner = Runner(config, context=redis.Redis.from_url(url))

    started = time.perf_counter()
    runner.start()
    try:
        while runner.stats.processed < count:
            if time.perf_counter() - started > DRAIN_TIMEOUT_S:
                raise TimeoutError(
                    f"drain timed out after {DRAIN_TIMEOUT_S:g} s with "
                    f"{runner.stats.processed} of {count} jobs processed; check the Runner's log"
                )
            time.sleep(DRAIN_POLL_INTERVAL_S)
        return started, time.perf_counter() - started
    finally:
        runner.stop()


def report(started: float, elapsed_s: float, count: int, concurrency: int, sleep_s: float) -> str:
    """Summarize the noted sleeps: the rate, the sleeps and the gaps between them.

    Also give the time from `Runner.start()`, at `started`, to the first sleep of each thread.
    """
    by_thread: dict[int, list[_Sleep]] = {}
    for sleep in sorted(_sleeps, key=lambda sleep: sleep.started):
        by_thread.setdefault(sleep.thread, []).append(sleep)

    gaps_ms: list[float] = []
    gap_cpu_ms: list[float] = []
    for sleeps in by_thread.values():
        for before, after in itertools.pairwise(sleeps):
            gaps_ms.append(1000 * (after.started - before.ended))
            gap_cpu_ms.append(1000 * (after.cpu_started - before.cpu_ended))
    gaps_ms.sort()

    rate = count / elapsed_s
    ideal = concurrency / sleep_s
    sleep_ms = statistics.mean(1000 * (sleep.ended - sleep.started) for sleep in _sleeps)
    rate_line = (
        f"{count} jobs of {1000 * sleep_s:g} ms at concurrency {concurrency}: "
        f"{rate:,.1f} jobs/s, {100 * rate / ideal:.2f}% of the ideal {ideal:,.0f}"
    )
    gap_line = (
        f"gap between jobs of one thread ({len(by_thread)} threads): mean "
        f"{statistics.mean(gaps_ms):.3f} ms, median {statistics.median(gaps_ms):.3f}, "
        f"p90 {gaps_ms[int(0.9 * len(gaps_ms))]:.3f}, max {gaps_ms[-1]:.3f}"
    )
    first_ms = sorted(1000 * (sleeps[0].started - started) for sleeps in by_thread.values())
    last_ended_ms = 1000 * (max(sleep.ended for sleep in _sleeps) - started)
    start_line = (
        f"from Runner.start() to the first sleep of a thread: {first_ms[0]:.2f} ms, "
        f"of every thread: {first_ms[-1]:.2f} ms. The drain ended "
        f"{1000 * elapsed_s - last_ended_ms:.2f} ms after the last sleep"
    )
    return "\n".join(
        [
            rate_line,
            start_line,
            f"sleep: mean {sleep_ms:.3f} ms",
            gap_line,
            f"thread CPU time in the gap: mean {statistics.mean(gap_cpu_ms):.3f} ms",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sleep_s = args.sleep_ms / 1000
    try:
        with find_or_start(None) as server:
            started, elapsed_s = drain(server.url, args.count, args.concurrency, sleep_s)
    except (DevServerError, TimeoutError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(report(started, elapsed_s, args.count, args.concurrency, sleep_s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
