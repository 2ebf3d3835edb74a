"""The per-job command path (`storage/wire.py`): replies in order, errors in place, and kept
connections that recover from a server that closed them, from a fork and from a pool reset."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from oxanus_sync.storage import wire


@pytest.fixture
def key(namespace: str) -> str:
    return f"{namespace}:wire"


@pytest.fixture
def no_retry_client(redis_url: str) -> Iterator[redis.Redis]:
    # Without retries, an exchange on a dead connection would raise instead of reconnecting.
    client = redis.Redis.from_url(redis_url, retry=Retry(NoBackoff(), 0))
    yield client
    client.close()


def test_replies_in_order_with_errors_in_place(redis_client: redis.Redis, key: str) -> None:
    replies = wire.exchange(
        redis_client, [["SET", key, "text"], ["INCR", key], ["GET", key], ["STRLEN", key]]
    )

    assert replies[0] == b"OK"
    assert isinstance(replies[1], redis.ResponseError)
    assert "not an integer" in str(replies[1])
    assert replies[2:] == [b"text", 4]


def test_connection_is_kept_between_exchanges(redis_client: redis.Redis) -> None:
    (first,) = wire.exchange(redis_client, [["CLIENT", "ID"]])
    (second,) = wire.exchange(redis_client, [["CLIENT", "ID"]])

    assert first == second


def test_connection_closed_by_server_is_replaced(
    no_retry_client: redis.Redis, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    (old_id,) = wire.exchange(no_retry_client, [["CLIENT", "ID"]])
    redis_client.client_kill_filter(_id=old_id)
    # Past FRESH_S the kept connection is checked before use, as the pool checks its own.
    monkeypatch.setattr(wire, "FRESH_S", 0.0)

    (new_id,) = wire.exchange(no_retry_client, [["CLIENT", "ID"]])

    assert new_id != old_id


def test_recently_used_connection_closed_by_server_is_retried(
    redis_client: redis.Redis, redis_url: str
) -> None:
    client = redis.Redis.from_url(redis_url, retry=Retry(NoBackoff(), 2))
    try:
        (old_id,) = wire.exchange(client, [["CLIENT", "ID"]])
        redis_client.client_kill_filter(_id=old_id)

        (new_id,) = wire.exchange(client, [["CLIENT", "ID"]])

        assert new_id != old_id
    finally:
        client.close()


def test_pool_disconnect_closes_kept_connections(redis_client: redis.Redis) -> None:
    (old_id,) = wire.exchange(redis_client, [["CLIENT", "ID"]])

    redis_client.connection_pool.disconnect()
    (new_id,) = wire.exchange(redis_client, [["CLIENT", "ID"]])

    assert new_id != old_id


def _client_id_in_child(client: redis.Redis, results: multiprocessing.Queue[int]) -> None:
    (client_id,) = wire.exchange(client, [["CLIENT", "ID"]])
    results.put(int(client_id))


def test_forked_child_opens_its_own_connection(redis_client: redis.Redis) -> None:
    (parent_id,) = wire.exchange(redis_client, [["CLIENT", "ID"]])
    context = multiprocessing.get_context("fork")
    results: multiprocessing.Queue[int] = context.Queue()

    child = context.Process(target=_client_id_in_child, args=(redis_client, results))
    child.start()
    child_id = results.get(timeout=30)
    child.join(timeout=30)

    assert child_id != parent_id
    # The parent's connection still works after the child used the client.
    assert wire.exchange(redis_client, [["CLIENT", "ID"]]) == [parent_id]


def test_blocking_pool_gets_its_connection_back(redis_url: str) -> None:
    pool = redis.BlockingConnectionPool.from_url(redis_url, max_connections=1, timeout=1)
    client = redis.Redis(connection_pool=pool)
    try:
        assert wire.exchange(client, [["PING"]]) == [b"PONG"]
        # A kept connection would leave none for this command, which would time out.
        assert client.ping() is True
    finally:
        client.close()


def test_client_with_other_encoding_uses_redis_py(redis_url: str, key: str) -> None:
    client = redis.Redis.from_url(redis_url, encoding="latin-1")
    try:
        wire.exchange(client, [["SET", key, "caf\u00e9"]])

        assert client.get(key) == "caf\u00e9".encode("latin-1")
    finally:
        client.close()
