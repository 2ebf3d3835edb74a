"""`CronService`: enqueues periodic jobs at their ticks, once per tick across all Runners."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from croniter import CroniterBadDateError

from oxanus_sync.cron import CronJob
from oxanus_sync.envelope import encode_job
from oxanus_sync.runner.service import Service
from oxanus_sync.signing import Signer
from oxanus_sync.storage.store import Storage

logger = logging.getLogger(__name__)

# Maximum sleep between two checks, so that a clock correction is noticed soon.
MAX_SLEEP_S = 1.0


class CronService(Service):
    """Fires each periodic job at its ticks, computed on the Redis server's clock.

    Every Runner that registers a periodic job runs this thread. The cron_fire script records
    each tick in Redis, so exactly one of them enqueues the job, with no leader to elect.
    """

    def __init__(
        self,
        *,
        storage: Storage,
        jobs: Sequence[CronJob],
        signer: Signer | None,
        clock_offset_ms: Callable[[], int],
    ) -> None:
        super().__init__(name="oxanus-cron")
        self.storage = storage
        self.jobs = list(jobs)
        self.signer = signer
        self.clock_offset_ms = clock_offset_ms
        self._next: dict[str, datetime] = {}
        self._published: dict[str, datetime] = {}

    def step(self) -> None:
        now = self._now()
        if not self._next:
            self._catch_up(now)

        for job in list(self.jobs):
            if now >= self._next[job.name]:
                self._fire(job, job.latest_tick(now), run=True)
                self._schedule(job, now)
        self._publish()

        ticks = [(tick - self._now()).total_seconds() for tick in self._next.values()]
        wait_s = min(ticks, default=MAX_SLEEP_S)
        self.stopped.wait(min(max(wait_s, 0.0), MAX_SLEEP_S))

    def _schedule(self, job: CronJob, now: datetime) -> None:
        # An expression limited to some years runs out of ticks; the other jobs go on.
        try:
            self._next[job.name] = job.next_tick(now)
        except CroniterBadDateError:
            logger.warning(
                "periodic job has no more ticks and is no longer scheduled name=%s "
                "expression=%r queue=%s",
                job.name,
                job.expression,
                job.queue,
            )
            self.jobs.remove(job)
            self._next.pop(job.name, None)

    def _catch_up(self, now: datetime) -> None:
        # Ticks that passed while no Runner was up: run the latest once, or skip them.
        for job in list(self.jobs):
            last_ms = self.storage.last_cron_tick(job.queue, job.name)
            latest = job.latest_tick(now)
            if last_ms is not None and _ms(latest) > last_ms:
                logger.info(
                    "periodic job missed ticks while no Runner was up name=%s policy=%s",
                    job.name,
                    job.missed,
                )
                self._fire(job, latest, run=job.missed == "latest")
            self._schedule(job, now)

    def _fire(self, job: CronJob, tick: datetime, *, run: bool) -> None:
        payload = encode_job(job.job)
        signature = self.signer.sign(payload) if self.signer else b""
        job_id = f"cron-{uuid.uuid5(uuid.NAMESPACE_URL, f'{job.name}@{_ms(tick)}').hex}"
        outcome = self.storage.fire_cron(
            job.queue, job.name, _ms(tick), (job_id, payload, signature), run=run
        )
        if outcome == 1:
            logger.info(
                "periodic job enqueued job_id=%s queue=%s type=%s name=%s tick=%s",
                job_id,
                job.queue,
                job.job.job_name,
                job.name,
                tick.isoformat(),
            )

    def _publish(self) -> None:
        if self._published == self._next:
            return
        entries = {
            job.name: json.dumps(
                {
                    "queue": job.queue,
                    "expression": job.expression,
                    "timezone": job.timezone.key,
                    "job_type": job.job.job_name,
                    "missed": job.missed,
                    "next_run_ms": _ms(self._next[job.name]),
                }
            )
            for job in self.jobs
        }
        self.storage.publish_periodic(entries)
        self._published = dict(self._next)

    def _now(self) -> datetime:
        now_ms = int(time.time() * 1000) + self.clock_offset_ms()
        return datetime.fromtimestamp(now_ms / 1000, UTC)


def _ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)
