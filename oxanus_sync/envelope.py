"""The payload stored for each job: a versioned JSON envelope with the job type and arguments.

A payload is `{"v": 1, "type": "<job name>", "args": {...}}`. The job id, queue, attempt
count and times live beside it in the job's Redis hash (see `oxanus_sync.storage.keys`), so the
payload itself never changes after enqueue.
"""

from __future__ import annotations

import json
import reprlib
from dataclasses import dataclass
from typing import Any

from oxanus_sync.errors import SerializationError
from oxanus_sync.jsonvalues import from_json_object, to_json
from oxanus_sync.worker import Worker

FORMAT_VERSION = 1

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_decoder = json.JSONDecoder(object_hook=from_json_object)


@dataclass(frozen=True)
class Envelope:
    """A decoded payload: the job type's wire name and its arguments."""

    job_type: str
    args: dict[str, Any]


def encode_job(job: Worker) -> bytes:
    """Encode `job` as a UTF-8 payload, or raise `SerializationError` naming the bad argument."""
    args = job.to_args()
    try:
        envelope = {"v": FORMAT_VERSION, "type": job.job_name, "args": to_json(args)}
        text = _encoder.encode(envelope)
        return text.encode("utf-8")
    except RecursionError as error:
        raise SerializationError(
            f"arguments of {job.job_name} are nested too deeply or contain themselves"
        ) from error
    except (TypeError, ValueError) as error:
        raise SerializationError(_describe_bad_argument(job, args, error)) from error


def decode_payload(payload: str | bytes) -> Envelope:
    """Decode a stored payload, or raise `SerializationError` saying what is wrong with it."""
    try:
        text = payload.decode() if isinstance(payload, bytes) else payload
        data = _decoder.decode(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SerializationError(f"payload is not valid JSON: {error}") from error
    except (ValueError, TypeError) as error:
        raise SerializationError(f"payload has an invalid tagged value: {error}") from error

    if not isinstance(data, dict):
        raise SerializationError(
            f"payload is not a job envelope: expected an object, got {data!r:.80}"
        )
    if data.get("v") != FORMAT_VERSION:
        raise SerializationError(
            f"payload format version {data.get('v')!r} is not supported "
            f"(this release reads version {FORMAT_VERSION})"
        )

    job_type, args = data.get("type"), data.get("args")
    if not isinstance(job_type, str) or not isinstance(args, dict):
        raise SerializationError(
            "payload is not a job envelope: 'type' must be a string and 'args' an object"
        )
    return Envelope(job_type, args)


def _describe_bad_argument(job: Worker, args: dict[str, Any], error: Exception) -> str:
    for name, value in args.items():
        try:
            _encoder.encode(to_json(value)).encode("utf-8")
        except UnicodeEncodeError as failure:
            return (
                f"argument {name!r} of {job.job_name} cannot be stored: its text is not valid "
                f"UTF-8 ({failure.reason} at position {failure.start}); remove the lone "
                "surrogate, or pass the raw data as bytes"
            )
        except (TypeError, ValueError) as failure:
            return (
                f"argument {name!r} of {job.job_name} cannot be stored as JSON: "
                f"{type(value).__name__} value {_short_repr(value)} ({failure}). Pass JSON "
                "types, or bytes, tuples, sets, datetimes, dates, times, Decimals or UUIDs"
            )
    return f"arguments of {job.job_name} cannot be stored as JSON: {error}"


def _short_repr(value: Any) -> str:
    try:
        return reprlib.repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not hide the real error
        return f"<{type(value).__name__} object>"


def encode_state(value: Any) -> bytes:
    """Encode a job's progress state, or raise `SerializationError` saying why it cannot be."""
    try:
        return _encoder.encode(to_json(value)).encode("utf-8")
    except RecursionError as error:
        raise SerializationError("job state is nested too deeply or contains itself") from error
    except (TypeError, ValueError) as error:
        raise SerializationError(
            f"job state {_short_repr(value)} cannot be stored: {error}. Use the types that job "
            "arguments accept"
        ) from error


def decode_state(data: bytes | None) -> Any:
    """Decode a stored progress state; None when there is none."""
    if not data:
        return None
    try:
        return _decoder.decode(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, TypeError) as error:
        raise SerializationError(f"stored job state is invalid: {error}") from error
