"""Enqueue options with RQ's names and rules: `Retry`, `Callback`, `Dependency`, time units
and job ids."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from oxanus_sync.rq.functions import callable_name

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+)([smhd]?)")
_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,200}")


class Retry:
    """Retry a failed job up to `max` times, waiting `interval` seconds (a number, or a list
    for successive retries) before each; RQ's semantics, including how a short list is used."""

    def __init__(
        self, max: int, interval: int | Sequence[int] = 0, enqueue_at_front: bool = False
    ) -> None:
        if isinstance(max, bool) or not isinstance(max, int) or max < 1:
            raise ValueError(f"Retry(max={max!r}) is invalid: max must be an integer of 1 or more")
        intervals = [interval] if isinstance(interval, int) else list(interval)
        for value in intervals:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(
                    f"Retry interval {interval!r} is invalid: use whole seconds of 0 or more"
                )
        self.max = max
        self.intervals = intervals or [0]
        self.enqueue_at_front = enqueue_at_front

    @staticmethod
    def get_interval(count: int, intervals: Sequence[int]) -> int:
        """Return the wait before a retry when `count` retries are left, as RQ picks it: a list
        shorter than `max` repeats its first value first."""
        if not intervals:
            return 0
        index = min(max(len(intervals) - count, 0), len(intervals) - 1)
        return intervals[index]


class Callback:
    """A function called after a job succeeds, fails or is stopped, given as a callable or a
    dotted path. `timeout` (60 s by default) is stored for RQ compatibility; see the
    migration page for how it is applied."""

    def __init__(self, func: Callable[..., Any] | str, timeout: int | str | None = None) -> None:
        self.func = func
        self.name = callable_name(func, what="callback")
        self.timeout = parse_timeout(timeout) if timeout is not None else 60


class Dependency:
    """Jobs a job waits for. With `allow_failure` it also runs after a dependency failed;
    `enqueue_at_front` puts it at the front of its queue when released."""

    def __init__(
        self, jobs: Any, allow_failure: bool = False, enqueue_at_front: bool = False
    ) -> None:
        items = jobs if isinstance(jobs, list | tuple) else [jobs]
        if not items:
            raise ValueError("Dependency needs at least one job or job id")
        self.dependencies = list(items)
        self.allow_failure = allow_failure
        self.enqueue_at_front = enqueue_at_front


def parse_timeout(value: object) -> int | None:
    """Return seconds from an int, a digit string or a unit string ('30s', '5m', '1h', '2d').

    None stays None and -1 means no limit. Raises ValueError for 0, negatives other than -1 and
    unknown units, as RQ does.
    """
    if value is None:
        return None
    if isinstance(value, timedelta):
        value = int(value.total_seconds())
    if isinstance(value, str):
        match = _DURATION.fullmatch(value.strip().lower())
        if match is None:
            raise ValueError(
                f"invalid duration {value!r}: use whole seconds or a number followed by "
                "s, m, h or d, such as '90', '5m' or '1h'"
            )
        value = int(match.group(1)) * _UNITS[match.group(2) or "s"]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"invalid duration {value!r}: use seconds or a unit string such as '5m'")
    seconds = int(value)
    if seconds == -1:
        return -1
    if seconds <= 0:
        raise ValueError(f"invalid duration {value!r}: use a positive number of seconds, or -1")
    return seconds


def parse_ttl(name: str, value: object, *, allow_zero: bool) -> int | None:
    """Return a time-to-live in seconds: None, -1 (forever), a positive number or, where
    `allow_zero`, 0."""
    if value is None:
        return None
    if value == 0 and allow_zero and not isinstance(value, bool):
        return 0
    try:
        return parse_timeout(value)
    except ValueError as error:
        raise ValueError(f"invalid {name}: {error}") from None


def validate_job_id(job_id: object) -> str:
    if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
        raise ValueError(f"invalid job id {job_id!r}: use 1 to 200 letters, digits, '_' or '-'")
    return job_id
