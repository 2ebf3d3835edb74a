"""`Heartbeat`: renews this process's leases and takes back the jobs of dead processes."""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence

from oxanus_sync.config import RunnerSettings
from oxanus_sync.runner.service import Service
from oxanus_sync.storage.store import Storage

logger = logging.getLogger(__name__)

# Jobs moved back per queue in one reclaim call; the next beat continues with the rest.
RECLAIM_BATCH = 1000
# Members of each queue family looked at per beat for retirement; the next beat goes on.
RETIRE_BATCH = 100


class Heartbeat(Service):
    """Every `heartbeat_interval_s`, renews this process's lease on each queue it serves and
    moves the jobs of processes whose lease expired back to their ready lists. It also drops idle
    members from the registry of each queue family in `families` (name -> `idle_retire_s`).

    It keeps running while a graceful shutdown drains jobs, and stops last.
    """

    def __init__(
        self,
        *,
        storage: Storage,
        process_id: str,
        queues: Sequence[str],
        settings: RunnerSettings,
        busy: Callable[[], int],
        concurrency: int,
        families: Mapping[str, float] | None = None,
    ) -> None:
        # Retry at the beat's own pace: a longer backoff would let the lease expire.
        super().__init__(name="oxanus-heartbeat", max_backoff_s=settings.heartbeat_interval_s)
        self.storage = storage
        self.process_id = process_id
        self.queues = list(queues)
        self.settings = settings
        self.busy = busy
        self.started_at_ms = 0
        # Server clock minus local clock, so that registry times use the server's clock.
        self.clock_offset_ms = 0
        self.concurrency = concurrency
        self.families = dict(families or {})
        self.beats = 0
        self.thread_failures: Callable[[], dict[str, str]] = dict
        self.claimed_ids: Callable[[], dict[str, set[str]]] = dict
        self._suspects: set[tuple[str, str]] = set()
        self._reclaim_paused_until = 0.0
        self._primary: tuple[str, int] | None = None
        # Set by the Runner: closes every connection so that each one reaches the new primary.
        self.on_failover: Callable[[], None] = self.storage.reset_connections

    def beat(self) -> None:
        """Renew the leases once; called before any fetcher starts, then by the thread."""
        if self.beats == 0:
            self.clock_offset_ms = self.storage.server_time_ms() - int(time.time() * 1000)
            self.started_at_ms = self._now_ms()
        info: dict[str, str | int] = {
            "id": self.process_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "queues": json.dumps(self.queues),
            "concurrency": self.concurrency,
            "busy": self.busy(),
            "started_at": self.started_at_ms,
            "last_beat": self._now_ms(),
            "failing": json.dumps(self.thread_failures()),
        }
        lease_ms = round(self.settings.lease_s * 1000)
        existed = self.storage.heartbeat(self.process_id, self.queues, lease_ms, info)

        if self.beats > 0:
            for queue, had_lease in zip(self.queues, existed, strict=True):
                if not had_lease:
                    logger.error(
                        "lease on queue %s was lost process_id=%s: no heartbeat reached Redis "
                        "for over %.1fs, so other Runners may have taken this process's jobs, "
                        "and the results of those jobs here will be discarded",
                        queue,
                        self.process_id,
                        self.settings.lease_s,
                    )
        self.beats += 1

    def _now_ms(self) -> int:
        return int(time.time() * 1000) + self.clock_offset_ms

    def step(self) -> None:
        recovering = self.failures > 0
        if not recovering:
            self.stopped.wait(self.settings.heartbeat_interval_s)
        if self.stopped.is_set():
            return
        self._follow_failover()
        self.beat()
        if recovering:
            self._pause_reclaim()
        if time.monotonic() >= self._reclaim_paused_until:
            self.reclaim()
        self.audit()
        self.retire_members()

    def _follow_failover(self) -> None:
        address = self.storage.primary_address()
        if address is None:
            return
        if self._primary is not None and address != self._primary:
            logger.warning(
                "Sentinel reports a new primary %s:%d (was %s:%d); reconnecting process_id=%s",
                *address,
                *self._primary,
                self.process_id,
            )
            self.on_failover()
        self._primary = address

    def _pause_reclaim(self) -> None:
        # Every lease expired while Redis was unreachable, not only those of dead Runners. Give
        # the live ones a full lease to renew theirs before taking their jobs.
        pause_s = self.settings.lease_s + self.settings.heartbeat_interval_s
        self._reclaim_paused_until = time.monotonic() + pause_s
        logger.info(
            "Redis is reachable again; reclaiming other Runners' jobs resumes in %.1fs "
            "process_id=%s",
            pause_s,
            self.process_id,
        )

    def reclaim(self) -> None:
        forget_after_ms = round(
            (self.settings.block_timeout_s + self.settings.lease_s) * 1000 + 60_000
        )
        moved = self.storage.reclaim(self.queues, forget_after_ms, RECLAIM_BATCH)
        for queue, job_ids in moved.items():
            logger.warning(
                "reclaimed %d jobs of stopped Runners queue=%s job_ids=%s",
                len(job_ids),
                queue,
                ",".join(job_ids[:20]),
            )

    def retire_members(self) -> None:
        if not self.families:
            return
        idle_ms = [(name, round(idle_s * 1000)) for name, idle_s in self.families.items()]
        retired = self.storage.retire_members(idle_ms, RETIRE_BATCH)
        for family, members in retired.items():
            logger.info(
                "retired %d idle members of queue family %s: %s",
                len(members),
                family,
                ",".join(members[:20]),
            )

    def audit(self) -> None:
        """Give back jobs that Redis lists as claimed by this process but that it does not hold.

        That happens when a claim's reply was lost, or when Redis restarted and replayed a
        claim that the process had already recorded. A job must look orphaned in two audits in
        a row, because a claim whose reply is still on its way looks the same once.
        """
        in_redis = self.storage.processing_ids(self.process_id, self.queues)
        held = self.claimed_ids()
        suspects = {
            (queue, job_id)
            for queue, job_ids in in_redis.items()
            for job_id in job_ids
            if job_id not in held.get(queue, set())
        }
        confirmed = suspects & self._suspects
        self._suspects = suspects - confirmed

        for queue, job_id in sorted(confirmed):
            if self.storage.requeue(queue, self.process_id, job_id):
                logger.warning(
                    "gave back a job that Redis listed as claimed by this process but that it "
                    "did not hold job_id=%s queue=%s process_id=%s",
                    job_id,
                    queue,
                    self.process_id,
                )
