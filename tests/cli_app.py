"""An application module for the command-line tests: `oxanus-sync worker tests.cli_app:config`.

`config` and `make_config()` have no client, so the worker connects to the Redis server and
namespace that the command line names with --url and --namespace.
"""

from __future__ import annotations

from typing import Any

import redis

from oxanus_sync import Config, Context, Queue, QueueConfig, RunnerSettings, Worker

QUEUE = Queue("cli", QueueConfig(concurrency=2))


class SetMarker(Worker, name="tests.cli.SetMarker"):
    """Sets the key `key` to `value` on the Redis server at `url`, so a test can check it ran."""

    url: str
    key: str
    value: str

    def process(self, ctx: Context[Any]) -> None:
        with redis.Redis.from_url(self.url) as connection:
            connection.set(self.key, self.value)


class UniqueMarker(SetMarker, name="tests.cli.UniqueMarker"):
    """A SetMarker that is unique by its key, with value "done"."""

    value: str = "done"

    def unique_key(self) -> str:
        return self.key


def make_config() -> Config:
    """Build the Config of this application, without a client."""
    config = Config(settings=RunnerSettings(shutdown_timeout_s=5.0))
    config.register_queue(QUEUE)
    config.register(SetMarker)
    return config


def make_text() -> str:
    """Return a value of the wrong type, for the test of a callable APP that is not a factory."""
    return "not a Config"


config = make_config()

not_a_config = "not a Config"
