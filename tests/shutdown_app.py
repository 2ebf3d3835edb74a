"""A Runner process for shutdown and crash tests: `python tests/shutdown_app.py URL NAMESPACE`.

Jobs record "start:TAG" and "end:TAG" in the list `<namespace>:events`, so a test can see what
ran without sharing memory with this process. Optional third argument: the shutdown timeout in
seconds (default 30).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import redis

from oxanus_sync import Client, Config, Context, Queue, QueueConfig, Runner, RunnerSettings, Worker

QUEUE = Queue("work", QueueConfig(concurrency=1))


class Sleepy(Worker, name="tests.Sleepy"):
    """Records its start, sleeps `seconds`, records its end."""

    tag: str
    seconds: float

    def process(self, ctx: Context[Any]) -> None:
        events: redis.Redis = ctx.shared["redis"]
        key = f"{ctx.shared['namespace']}:events"
        events.rpush(key, f"start:{self.tag}")
        time.sleep(self.seconds)
        events.rpush(key, f"end:{self.tag}")


def main() -> None:
    url, namespace = sys.argv[1], sys.argv[2]
    shutdown_timeout_s = float(sys.argv[3]) if len(sys.argv) > 3 else 30.0
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")

    settings = RunnerSettings(shutdown_timeout_s=shutdown_timeout_s)
    config = Config(client=Client.from_url(url, namespace=namespace), settings=settings)
    config.register_queue(QUEUE)
    config.register(Sleepy)

    shared = {"redis": redis.Redis.from_url(url), "namespace": namespace}
    Runner(config, context=shared).run_forever()


if __name__ == "__main__":
    main()
