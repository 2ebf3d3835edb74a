"""Parsing of script and command replies into records, tolerant of hashes damaged by hand."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from oxanus_sync.queue import WHOLE_FAMILY, split_member_name
from oxanus_sync.storage.keys import QueueKeys
from oxanus_sync.storage.records import (
    ClaimedJob,
    FamilyCounts,
    ProcessRecord,
    QueueCounts,
    ThrottleState,
)

# The fields that claim_jobs in lua/_common.lua reads after each job id, in order.
CLAIM_FIELDS = [
    "payload",
    "attempt",
    "reclaims",
    "enqueued_at",
    "due_at",
    "sig",
    "state",
    "unique",
]
_CLAIM_WIDTH = 1 + len(CLAIM_FIELDS)


def decode_text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def as_bytes(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def member_key(queue: str) -> str | None:
    """Return the member key of a member name such as "tenants[acme]", else None."""
    member = split_member_name(queue)
    if member is None or member[1] == WHOLE_FAMILY:
        return None
    return member[1]


def job_queue_name(keys: QueueKeys, member: bytes | None) -> str:
    """Return the name of the queue a job belongs to: its member's name in a queue family."""
    if not keys.family or member is None:
        return keys.queue
    return keys.queue.removesuffix(f"[{WHOLE_FAMILY}]") + f"[{decode_text(member)}]"


def parse_claimed(keys: QueueKeys, raw: Sequence[Any]) -> list[ClaimedJob]:
    # A family claim returns each job's member after its fields.
    width = _CLAIM_WIDTH + 1 if keys.family else _CLAIM_WIDTH
    jobs = []
    for i in range(0, len(raw), width):
        entry = raw[i : i + width]
        job_id, payload, attempt, reclaims, enqueued_at, due_at = entry[:6]
        signature, state, unique = entry[6:_CLAIM_WIDTH]
        member = entry[_CLAIM_WIDTH] if keys.family else None
        if payload is not None:
            try:
                jobs.append(
                    ClaimedJob(
                        keys.queue if member is None else job_queue_name(keys, member),
                        job_id.decode(),
                        payload,
                        int(attempt) if attempt else 0,
                        int(reclaims) if reclaims else 0,
                        int(enqueued_at) if enqueued_at else None,
                        int(due_at) if due_at else None,
                        signature,
                        state,
                        unique=unique,
                    )
                )
                continue
            except ValueError:
                pass  # A field is not a number: the slower path below names it.

        problems: list[str] = []
        if payload is None:
            problems.append("the job hash has no payload field")
        jobs.append(
            ClaimedJob(
                queue=job_queue_name(keys, member),
                id=job_id.decode(),
                payload=payload or b"",
                attempt=number_field("attempt", attempt, problems) or 0,
                reclaims=number_field("reclaims", reclaims, problems) or 0,
                enqueued_at_ms=number_field("enqueued_at", enqueued_at, problems),
                due_at_ms=number_field("due_at", due_at, problems),
                signature=signature,
                state=state,
                problem="; ".join(problems) or None,
                unique=unique,
            )
        )
    return jobs


def number_field(name: str, value: bytes | None, problems: list[str]) -> int | None:
    # A job hash damaged by hand must not stop the claim of the jobs beside it.
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        problems.append(f"field {name} is {value!r}, not an integer")
        return None


def parse_counts(queue: str, raw: Sequence[Any]) -> QueueCounts:
    ready, scheduled, retry, dead, latency, running, orphaned, flat, unique_keys, throttle = raw[
        :10
    ]
    family_fields = raw[10:]
    counters = {flat[i].decode(): int(flat[i + 1]) for i in range(0, len(flat), 2)}
    family = None
    if family_fields:
        members, active, biggest = family_fields
        family = FamilyCounts(
            members=int(members),
            active=int(active),
            biggest_backlogs={
                decode_text(biggest[i]): int(biggest[i + 1]) for i in range(0, len(biggest), 2)
            },
        )
    return QueueCounts(
        queue=queue,
        ready=int(ready),
        scheduled=int(scheduled),
        retry=int(retry),
        dead=int(dead),
        running=int(running),
        orphaned=int(orphaned),
        latency_ms=int(latency),
        # Every finished attempt either succeeded or failed, so the sum is not stored.
        processed=counters.get("succeeded", 0) + counters.get("failed", 0),
        succeeded=counters.get("succeeded", 0),
        failed=counters.get("failed", 0),
        retried=counters.get("retried", 0),
        dead_total=counters.get("dead", 0),
        cancelled=counters.get("cancelled", 0),
        timed_out=counters.get("timed_out", 0),
        unique_keys=int(unique_keys),
        throttle=ThrottleState(*(int(value) for value in throttle)) if throttle else None,
        family=family,
    )


def parse_process(process_id: str, fields: dict[bytes, bytes]) -> ProcessRecord:
    raw = {name.decode(): value.decode() for name, value in fields.items()}
    return ProcessRecord(
        id=process_id,
        host=raw.get("host", "?"),
        pid=int(raw.get("pid", 0)),
        queues=json.loads(raw.get("queues", "[]")),
        busy=int(raw.get("busy", 0)),
        concurrency=int(raw.get("concurrency", 0)),
        started_at_ms=int(raw.get("started_at", 0)),
        last_beat_ms=int(raw.get("last_beat", 0)),
        raw=raw,
    )
