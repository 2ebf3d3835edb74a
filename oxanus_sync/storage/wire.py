"""Commands packed by hiredis and exchanged on a pooled connection: the path of per-job calls.

redis-py's command path encodes each argument in Python, runs response callbacks and
observability hooks, and costs about 100 us of client CPU per call on a 2-core machine, where
the socket I/O itself costs about 30. The calls that run once per job (enqueue, claim, ack,
fail) pack their arguments with `hiredis.pack_command` and exchange them here instead. They
keep what matters of the client: its connection pool, with the pool's checks of idle
connections, and the retry policy of the connection.

A client that redis-py would treat differently (a single-connection client, or one that
encodes text other than as UTF-8) takes the ordinary path, `Redis.execute_command`.
"""

from __future__ import annotations

import inspect
import os
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import hiredis
import redis

Arg = str | bytes | int | float

# Commands are sent in writes of about this many bytes (see _writes).
WRITE_BYTES = 64 * 1024

# A kept connection used this recently is not checked before its next use.
FRESH_S = 1.0

# redis-py before 5.3 requires a command name in get_connection(), and later versions warn on it.
_COMMAND_NAME = inspect.signature(redis.ConnectionPool.get_connection).parameters.get(
    "command_name"
)
_NAMES_COMMAND = _COMMAND_NAME is not None and _COMMAND_NAME.default is inspect.Parameter.empty


# hiredis's stub types the argument as a tuple of one item; it takes any number.
_pack: Callable[[tuple[Arg, ...]], bytes] = hiredis.pack_command  # type: ignore[assignment]


class _KeptConnections:
    """Connections of one client's pool kept between exchanges, which skips the pool's lock
    and bookkeeping on each call (about 15 us of CPU).

    They stay checked out of the pool, so `pool.disconnect()` still closes them, and the next
    exchange on one reconnects. A kept connection with data waiting, or closed by the server,
    is reconnected before use, as the pool does, unless it was used less than `FRESH_S` ago.
    That check costs a system call. A connection that dropped since its last use fails its
    exchange, and the client's retry policy, if it has one, repeats it on a new connection.
    A forked child drops the connections of its parent. A `BlockingConnectionPool` caps its
    connections, so with one nothing is kept.
    """

    def __init__(self, client: redis.Redis) -> None:
        self.pool = client.connection_pool
        self.plain = _is_plain(client)
        self.keep = not isinstance(self.pool, redis.BlockingConnectionPool)
        self.idle: list[tuple[Any, float]] = []

    def take(self) -> Any:
        try:
            connection, released_at = self.idle.pop()
        except IndexError:
            return (
                self.pool.get_connection("EXCHANGE")
                if _NAMES_COMMAND
                else self.pool.get_connection()
            )

        if time.monotonic() - released_at < FRESH_S:
            return connection
        try:
            stale = connection.can_read()
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            stale = True
        if stale:
            connection.disconnect()
        return connection

    def give_back(self, connection: Any) -> None:
        if self.keep:
            self.idle.append((connection, time.monotonic()))
        else:
            self.pool.release(connection)


_kept_by_client: weakref.WeakKeyDictionary[redis.Redis, _KeptConnections] = (
    weakref.WeakKeyDictionary()
)


def _forget_after_fork() -> None:
    # The child must not share the parent's sockets, so it opens its own through the pool.
    for kept in list(_kept_by_client.values()):
        kept.idle = []


os.register_at_fork(after_in_child=_forget_after_fork)


def exchange(client: redis.Redis, commands: Sequence[Sequence[Arg]]) -> list[Any]:
    """Send `commands` on one connection, in writes of about `WRITE_BYTES`, and return their
    replies in order.

    A command that Redis rejected has its `redis.ResponseError` in place of the reply. The
    client's retry policy repeats a try that failed with a connection error or a timeout,
    resending every command as a redis-py pipeline does. When retries run out, the error is
    raised.
    """
    kept = _kept_by_client.get(client)
    if kept is None:
        kept = _kept_by_client.setdefault(client, _KeptConnections(client))
    if not kept.plain:
        return _exchange_by_redis_py(client, commands)

    packed = _writes(commands)
    connection = kept.take()
    try:
        replies: list[Any] = connection.retry.call_with_retry(
            lambda: _send_and_read(connection, packed, len(commands)),
            lambda _error: connection.disconnect(),
        )
    except BaseException:
        kept.pool.release(connection)
        raise
    kept.give_back(connection)
    return replies


def _writes(commands: Sequence[Sequence[Arg]]) -> list[bytes]:
    """Pack `commands` into writes of about `WRITE_BYTES` each.

    The socket timeout bounds each write, so one write of a million-job enqueue would time out
    while Redis is still running the first scripts.
    """
    if len(commands) == 1:
        return [_pack(tuple(commands[0]))]

    writes: list[bytes] = []
    pending: list[bytes] = []
    size = 0
    for command in commands:
        packed = _pack(tuple(command))
        pending.append(packed)
        size += len(packed)
        if size >= WRITE_BYTES:
            writes.append(b"".join(pending))
            pending.clear()
            size = 0
    if pending:
        writes.append(b"".join(pending))
    return writes


def _send_and_read(connection: Any, packed: list[bytes], count: int) -> list[Any]:
    connection.send_packed_command(packed)
    replies: list[Any] = []
    try:
        for _ in range(count):
            try:
                replies.append(connection.read_response())
            except redis.ResponseError as error:
                replies.append(error)
    except BaseException:
        # Replies still on the socket would reach the next user of the connection.
        connection.disconnect()
        raise
    return replies


def _is_plain(client: redis.Redis) -> bool:
    if getattr(client, "connection", None) is not None:
        return False
    encoding = client.connection_pool.connection_kwargs.get("encoding", "utf-8")
    return str(encoding).lower().replace("-", "") == "utf8"


def _exchange_by_redis_py(client: redis.Redis, commands: Sequence[Sequence[Arg]]) -> list[Any]:
    pipe = client.pipeline(transaction=False)
    for command in commands:
        pipe.execute_command(*command)  # type: ignore[no-untyped-call]
    return pipe.execute(raise_on_error=False)
