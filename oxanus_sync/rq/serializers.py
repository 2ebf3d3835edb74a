"""Serializers of job arguments and return values.

The default, `JSONSerializer`, stores JSON extended to bytes, tuples, sets, datetimes, dates,
times, Decimals and UUIDs (see `oxanus_sync.jsonvalues`), and loading it never runs code.
RQ's default is pickle. Here pickle is an explicit opt-in (`serializer="pickle"`), because
anyone who can write to Redis can make a worker run code through a pickled payload.
"""

from __future__ import annotations

import importlib
import json
import pickle
from typing import Any, Protocol

from oxanus_sync.errors import ConfigurationError
from oxanus_sync.jsonvalues import from_json_object, to_json

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_decoder = json.JSONDecoder(object_hook=from_json_object)


class Serializer(Protocol):
    def dumps(self, value: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


class JSONSerializer:
    """JSON extended to the common Python types; raises TypeError for anything else."""

    name = "json"

    @staticmethod
    def dumps(value: Any) -> bytes:
        return _encoder.encode(to_json(value)).encode("utf-8")

    @staticmethod
    def loads(data: bytes) -> Any:
        return _decoder.decode(data.decode("utf-8"))


class PickleSerializer:
    """Pickle at the highest protocol. Opt in only when every writer to Redis is trusted."""

    name = "pickle"

    @staticmethod
    def dumps(value: Any) -> bytes:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def loads(data: bytes) -> Any:
        return pickle.loads(data)


DefaultSerializer = JSONSerializer


def resolve_serializer(serializer: object = None) -> Serializer:
    """Return the serializer named by `serializer`: None or "json", "pickle", an object with
    `dumps` and `loads`, or the dotted path of one."""
    if serializer is None or serializer == "json":
        return JSONSerializer()
    if serializer == "pickle":
        return PickleSerializer()
    if isinstance(serializer, str):
        module_name, _, attribute = serializer.rpartition(".")
        try:
            serializer = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError, ValueError) as error:
            raise ConfigurationError(
                f"serializer {serializer!r} not found ({error}); use 'json', 'pickle' or the "
                "dotted path of an object with dumps() and loads()"
            ) from error
    if not (
        callable(getattr(serializer, "dumps", None))
        and callable(getattr(serializer, "loads", None))
    ):
        raise ConfigurationError(
            f"invalid serializer {serializer!r}: it needs dumps() and loads() methods"
        )
    return serializer  # type: ignore[return-value]


def serializer_name(serializer: Serializer) -> str:
    name = getattr(serializer, "name", None)
    if isinstance(name, str):
        return name
    kind = serializer if isinstance(serializer, type) else type(serializer)
    return f"{kind.__module__}.{kind.__qualname__}"
