"""Periodic jobs: a job enqueued at every tick of a cron expression, in a time zone.

Expressions follow croniter: five fields (minute, hour, day of month, month, day of week), or
six with seconds as the sixth field. Ticks are computed in the job's IANA time zone, and across
daylight-saving changes the rules are:
- a tick whose wall time does not exist (02:30 on the night clocks go forward) fires at the
  first instant after the gap (03:00), as croniter computes it;
- a tick whose wall time happens twice (01:30 on the night clocks go back, in zones that
  repeat that hour) fires once, at the first occurrence.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

from oxanus_sync.errors import ConfigurationError
from oxanus_sync.worker import Worker

MissedPolicy = Literal["latest", "skip"]


@dataclass(frozen=True)
class CronJob:
    """A job to enqueue on `queue` at every tick of `expression` in `timezone`.

    `missed` decides what happens to ticks that passed while no Runner was up: "latest" runs
    the most recent of them once when a Runner returns, "skip" drops them.
    """

    name: str
    expression: str
    job: Worker
    queue: str
    timezone: ZoneInfo
    missed: MissedPolicy = "latest"

    @classmethod
    def build(
        cls,
        expression: str,
        job: Worker,
        queue: str,
        *,
        timezone: str = "UTC",
        name: str | None = None,
        missed: MissedPolicy = "latest",
    ) -> CronJob:
        """Validate the parts and return the periodic job, or raise `ConfigurationError`."""
        if not isinstance(expression, str) or not croniter.is_valid(expression):
            raise ConfigurationError(
                f"invalid cron expression {expression!r}: use five fields (minute hour day "
                "month weekday) or six with seconds last, for example '*/5 * * * *'"
            )
        if not isinstance(job, Worker):
            raise ConfigurationError(f"expected a Worker instance to enqueue, got {job!r}")
        if missed not in ("latest", "skip"):
            raise ConfigurationError(f"missed must be 'latest' or 'skip', got {missed!r}")
        if not isinstance(timezone, str):
            raise ConfigurationError(
                f"invalid time zone {timezone!r}: pass an IANA name such as 'Europe/Paris'"
            )
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ConfigurationError(
                f"unknown time zone {timezone!r}: use an IANA name such as 'Europe/Paris'"
            ) from error

        digest = hashlib.sha1(f"{expression}|{timezone}".encode()).hexdigest()[:8]
        cron_job = cls(
            name=name or f"{job.job_name}@{digest}",
            expression=expression,
            job=job,
            queue=queue,
            timezone=zone,
            missed=missed,
        )
        cron_job.check_fires()
        return cron_job

    def check_fires(self) -> None:
        """Raise `ConfigurationError` if the expression has no tick from now on."""
        try:
            self.next_tick(datetime.now(UTC))
        except CroniterBadDateError as error:
            raise ConfigurationError(
                f"cron expression {self.expression!r} never fires from now on (a date such "
                "as February 30, or a year in the past): fix the expression"
            ) from error

    def next_tick(self, after: datetime) -> datetime:
        """Return the first tick strictly after `after`, as an aware UTC datetime."""
        ticks = croniter(self.expression, after.astimezone(self.timezone))
        while True:
            tick: datetime = ticks.get_next(datetime)
            if not _is_repeated_wall_time(tick):
                return tick.astimezone(UTC)

    def latest_tick(self, at: datetime) -> datetime:
        """Return the last tick at or before `at`, as an aware UTC datetime."""
        # Ticks fall on whole seconds, so the ticks at or before `at` are those strictly before
        # the next whole second.
        start = at.replace(microsecond=0) + timedelta(seconds=1)
        ticks = croniter(self.expression, start.astimezone(self.timezone))
        while True:
            tick: datetime = ticks.get_prev(datetime)
            if not _is_repeated_wall_time(tick):
                return tick.astimezone(UTC)


def _is_repeated_wall_time(moment: datetime) -> bool:
    # The later of two instants with the same wall time (fold 1) when clocks go back.
    if moment.fold == 0:
        return False
    return moment.replace(fold=0).utcoffset() != moment.utcoffset()
