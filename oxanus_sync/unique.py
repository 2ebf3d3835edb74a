"""Unique jobs: the key a job type derives from its arguments, and what an enqueue did with it.

A job type becomes unique by overriding `Worker.unique_key`. A unique job exists while it is
ready, scheduled, running, waiting for a retry or reclaimed after a crash. Meanwhile another
enqueue of the same type and key to that queue does not create a second job. By the type's
`unique_conflict` it is skipped ("skip", the default), or it replaces the arguments and due time
of the existing job when that job has not started ("replace"). A running job keeps its
arguments, so the enqueue is reported as skipped.
"""

from __future__ import annotations

import enum
import json
from typing import Literal

from oxanus_sync.errors import EnqueueError

OnConflict = Literal["skip", "replace"]
CONFLICT_POLICIES: tuple[OnConflict, ...] = ("skip", "replace")

# Maximum length of a unique key, in characters.
MAX_KEY_LENGTH = 1024


class EnqueueOutcome(enum.StrEnum):
    """The result of one enqueue: a new job, or a unique job skipped or merged into another."""

    CREATED = "created"
    SKIPPED = "skipped"
    REPLACED = "replaced"


class Enqueued(str):
    """The id of an enqueued job, with the `outcome` of the enqueue.

    It is a `str`, so code that stores or compares job ids keeps working. For a skipped or
    replaced unique job the id is that of the existing job with that key.
    """

    __slots__ = ("outcome",)
    outcome: EnqueueOutcome

    def __new__(cls, job_id: str, outcome: EnqueueOutcome) -> Enqueued:
        instance = super().__new__(cls, job_id)
        instance.outcome = outcome
        return instance

    def __repr__(self) -> str:
        return f"Enqueued({str(self)!r}, {self.outcome.value})"

    @property
    def created(self) -> bool:
        return self.outcome is EnqueueOutcome.CREATED

    @property
    def skipped(self) -> bool:
        return self.outcome is EnqueueOutcome.SKIPPED

    @property
    def replaced(self) -> bool:
        return self.outcome is EnqueueOutcome.REPLACED


def unique_field(job_type: str, key: object, member: str | None = None) -> str:
    """Return the unique-hash field of a job of type `job_type` with unique key `key`.

    A job of a queue family member also passes `member`, so that each member has its own keys.

    Raises `EnqueueError` when `key` is not a non-empty string of at most 1,024 characters.
    """
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise EnqueueError(
            f"{job_type}.unique_key() returned {key!r}: return a non-empty string of at most "
            f"{MAX_KEY_LENGTH} characters, or None for a job that is not unique"
        )
    parts = [job_type, key] if member is None else [job_type, key, member]
    return json.dumps(parts, ensure_ascii=False, separators=(",", ":"))
