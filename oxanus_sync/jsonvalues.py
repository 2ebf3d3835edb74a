"""JSON for job arguments, extended so that common Python values round-trip exactly.

Plain JSON values (str, int, float, bool, None, lists and dicts with string keys) are stored as
they are. Other supported values become a tagged object `{"$oxanus": KIND, "v": VALUE}`:

| Python value          | KIND       | VALUE                                  |
|-----------------------|------------|----------------------------------------|
| bytes, bytearray      | `bytes`    | base64 text (bytearray comes back as bytes) |
| tuple                 | `tuple`    | list                                   |
| set, frozenset        | `set`, `frozenset` | list                           |
| datetime.datetime     | `datetime` | ISO 8601 text, with its offset if aware |
| datetime.date         | `date`     | ISO 8601 text                          |
| datetime.time         | `time`     | ISO 8601 text                          |
| decimal.Decimal       | `decimal`  | text                                   |
| uuid.UUID             | `uuid`     | text                                   |
| a dict with a `$oxanus` key | `dict` | list of [key, value] pairs          |

Subclasses of str, int and float (such as enum members) are stored as the plain value.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

TAG = "$oxanus"

_PLAIN = frozenset({str, int, float, bool, type(None)})


def to_json(value: Any) -> Any:
    """Return `value` as plain JSON data, or raise TypeError naming what cannot be stored."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is list:
        return [to_json(item) for item in value]
    if kind is dict:
        return _dict_to_json(value)

    for python_type, tag, encode in _ENCODERS:
        if isinstance(value, python_type):
            return {TAG: tag, "v": encode(value)}
    if isinstance(value, str | int | float):
        return _plain_subclass(value)
    raise TypeError(f"values of type {kind.__name__} cannot be stored as JSON")


def from_json_object(data: dict[str, Any]) -> Any:
    """Decode one JSON object: the `object_hook` of the payload decoder."""
    if len(data) != 2 or TAG not in data:
        return data

    decode = _DECODERS.get(data[TAG])
    if decode is None:
        raise ValueError(f"unknown tagged value kind {data[TAG]!r}")
    return decode(data["v"])


def _dict_to_json(value: dict[Any, Any]) -> Any:
    converted = {}
    for key, item in value.items():
        if type(key) is not str:
            raise TypeError(f"dict key {key!r} is not a string")
        converted[key] = to_json(item)
    if TAG in converted:
        return {TAG: "dict", "v": [[key, item] for key, item in converted.items()]}
    return converted


def _plain_subclass(value: str | int | float) -> str | int | float:
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


def _bytes_text(value: bytes | bytearray) -> str:
    return base64.b64encode(bytes(value)).decode("ascii")


# Order matters: datetime is a subclass of date, so it is checked first.
_ENCODERS: tuple[tuple[type, str, Callable[[Any], Any]], ...] = (
    (bytes, "bytes", _bytes_text),
    (bytearray, "bytes", _bytes_text),
    (tuple, "tuple", lambda value: [to_json(item) for item in value]),
    (frozenset, "frozenset", lambda value: [to_json(item) for item in value]),
    (set, "set", lambda value: [to_json(item) for item in value]),
    (dt.datetime, "datetime", lambda value: value.isoformat()),
    (dt.date, "date", lambda value: value.isoformat()),
    (dt.time, "time", lambda value: value.isoformat()),
    (Decimal, "decimal", str),
    (uuid.UUID, "uuid", str),
)

_DECODERS: dict[str, Callable[[Any], Any]] = {
    "bytes": lambda text: base64.b64decode(text, validate=True),
    "tuple": tuple,
    "set": set,
    "frozenset": frozenset,
    "datetime": dt.datetime.fromisoformat,
    "date": dt.date.fromisoformat,
    "time": dt.time.fromisoformat,
    "decimal": Decimal,
    "uuid": uuid.UUID,
    "dict": dict,
}
