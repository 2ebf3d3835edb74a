"""`Scheduler`: moves due delayed jobs and retries to their ready lists."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from oxanus_sync.runner.service import Service
from oxanus_sync.storage.store import Storage

logger = logging.getLogger(__name__)

# Jobs moved per queue and set in one script call; a full batch makes the next call immediate.
PROMOTE_BATCH = 500


class Scheduler(Service):
    """Polls the scheduled and retry sets of every queue, one pipelined round trip per pass.

    It sleeps until the earliest due time it saw, but never longer than `interval_s`, so a job
    scheduled by another process is picked up at most `interval_s` after it is due.
    """

    def __init__(self, *, storage: Storage, queues: Sequence[str], interval_s: float) -> None:
        super().__init__(name="oxanus-scheduler")
        self.storage = storage
        self.queues = list(queues)
        self.interval_s = interval_s

    def step(self) -> None:
        results = self.storage.promote_due(self.queues, PROMOTE_BATCH)
        moved = sum(count for count, _, _ in results)
        if moved:
            logger.debug("moved %d due jobs to their ready lists", moved)
        if any(count >= PROMOTE_BATCH for count, _, _ in results):
            return

        self.stopped.wait(self._sleep_s(results))

    def _sleep_s(self, results: Sequence[tuple[int, int, int]]) -> float:
        sleep_s = self.interval_s
        for _, next_due_ms, now_us in results:
            if next_due_ms >= 0:
                sleep_s = min(sleep_s, max(next_due_ms * 1000 - now_us, 0) / 1_000_000)
        return sleep_s
