"""Turning the `connection` argument of RQ's API into a `Client` of this library."""

from __future__ import annotations

import redis

from oxanus_sync.client import Client
from oxanus_sync.storage.rq_store import RQStorage

Connection = redis.Redis | Client


def as_client(connection: object) -> Client:
    """Return a Client for `connection`: a `redis.Redis` (namespace "oxanus") or a `Client`,
    which sets the namespace and signing keys."""
    if isinstance(connection, Client):
        return connection
    if isinstance(connection, redis.Redis):
        return Client(connection)
    raise TypeError(
        f"connection must be a redis.Redis or an oxanus_sync.Client, got {connection!r}; "
        "for example Queue('default', connection=Redis.from_url('redis://localhost:6379/0'))"
    )


def rq_storage(client: Client) -> RQStorage:
    return RQStorage(client.storage)
