"""`Result`: one stored outcome of a job, as RQ's `job.latest_result()` returns it."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import Any

from oxanus_sync.storage.rq_store import RQResult


class Result:
    """A job's outcome: `type`, `return_value` (successes), `exc_string` (failures),
    `created_at` and `worker_name`."""

    # A plain Enum, not an IntEnum, because RQ 3.0's Result.Type is one: str() gives
    # "Type.SUCCESSFUL" and int() raises TypeError in both.
    class Type(Enum):
        SUCCESSFUL = 1
        FAILED = 2
        STOPPED = 3
        RETRIED = 4
        # RQ 3.0 records this for jobs that returned Retry, which this layer does not support,
        # so no stored result has this type.
        MAX_RETRIES_EXCEEDED = 5

    def __init__(self, job_id: str, stored: RQResult, return_value: Any) -> None:
        self.job_id = job_id
        self.type = Result.Type(stored.type)
        self.return_value = return_value
        self.exc_string = stored.exc_string
        self.created_at = datetime.fromtimestamp(stored.created_at_ms / 1000, UTC)
        self.worker_name = stored.worker_name
        self.id = stored.stream_id

    def __repr__(self) -> str:
        return f"Result(job_id={self.job_id!r}, type={self.type.name})"
