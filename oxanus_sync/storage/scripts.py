"""Loading the Lua scripts from `lua/` and calling them with EVALSHA.

A script whose first line is `--! include NAME` gets the file NAME prepended, so that shared
helpers live in one file. Scripts are called by their SHA1 through `wire.exchange`. When Redis
replies NOSCRIPT (the first call, or after a restart or SCRIPT FLUSH), the call is sent again as
EVAL with the source, which also caches the script on that server.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from importlib import resources
from typing import Any

import redis
from redis.exceptions import NoScriptError

from oxanus_sync.storage.wire import exchange

_INCLUDE = "--! include "

KeyOrArg = str | bytes | int | float


class Script:
    """One Lua script, addressed by its SHA1."""

    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def __call__(
        self, client: redis.Redis, keys: Sequence[KeyOrArg], args: Sequence[KeyOrArg]
    ) -> Any:
        (reply,) = run_scripts(client, [(self, keys, args)])
        if isinstance(reply, Exception):
            raise reply
        return reply

    def command(self, keys: Sequence[KeyOrArg], args: Sequence[KeyOrArg]) -> list[KeyOrArg]:
        """Return the EVALSHA command of a call, for `wire.exchange`."""
        return ["EVALSHA", self.sha, len(keys), *keys, *args]

    def queue_in(self, pipe: Any, keys: Sequence[KeyOrArg], args: Sequence[KeyOrArg]) -> None:
        """Add a call to a pipeline; run the pipeline with `execute_pipeline`."""
        pipe.evalsha(self.sha, len(keys), *keys, *args)


def execute_pipeline(
    client: redis.Redis, pipe: Any, scripts: Sequence[Script], *, raise_on_error: bool = True
) -> list[Any]:
    """Execute a non-transactional pipeline, sending again any script Redis did not know.

    Only the commands that failed with NOSCRIPT are sent again, as EVAL with the script's
    source: Redis rejected them before running them, so nothing runs twice. Any other error is
    raised, or with `raise_on_error` false left in the results in place of the reply.
    """
    commands = list(pipe.command_stack)
    results: list[Any] = pipe.execute(raise_on_error=False)
    missing = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
    if missing:
        sources = {script.sha: script.source for script in scripts}
        retry = client.pipeline(transaction=False)
        for i in missing:
            args, options = commands[i]
            _, sha, *rest = args
            retry.execute_command("EVAL", sources[sha], *rest, **options)  # type: ignore[no-untyped-call]
        for i, result in zip(missing, retry.execute(raise_on_error=False), strict=True):
            results[i] = result

    for result in results:
        if raise_on_error and isinstance(result, Exception):
            raise result
    return results


def run_scripts(
    client: redis.Redis, calls: Sequence[tuple[Script, Sequence[KeyOrArg], Sequence[KeyOrArg]]]
) -> list[Any]:
    """Run script calls in one round trip; return each reply, or the error Redis gave it.

    A call that Redis rejected with NOSCRIPT is sent again as EVAL with the script's source,
    which also caches the script on the server that replied, even right after a failover.
    Redis rejected the first try before running it, so nothing runs twice.
    """
    replies = exchange(client, [script.command(keys, args) for script, keys, args in calls])
    missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
    if missing:
        resent = [
            ["EVAL", calls[i][0].source, len(calls[i][1]), *calls[i][1], *calls[i][2]]
            for i in missing
        ]
        for i, reply in zip(missing, exchange(client, resent), strict=True):
            replies[i] = reply
    return replies


def load_scripts() -> dict[str, Script]:
    """Read every script under `lua/`, resolving includes; names are file names without `.lua`."""
    folder = resources.files("oxanus_sync.storage") / "lua"
    texts = {
        entry.name: entry.read_text(encoding="utf-8")
        for entry in folder.iterdir()
        if entry.name.endswith(".lua")
    }

    scripts = {}
    for file_name, text in texts.items():
        if file_name.startswith("_"):
            continue
        first_line, _, rest = text.partition("\n")
        if first_line.startswith(_INCLUDE):
            text = texts[first_line[len(_INCLUDE) :].strip()] + "\n" + rest
        name = file_name.removesuffix(".lua")
        scripts[name] = Script(name, text)
    return scripts
