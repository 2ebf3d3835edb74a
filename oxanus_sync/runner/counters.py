"""`RunnerStats`: what one Runner process did, counted locally."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class RunnerStats:
    """Counts of job outcomes in this process.

    `processed` counts finished attempts: `succeeded + failed`. `failed` splits into `retried`
    and `dead`. `lost` counts attempts whose result was discarded because the job had already
    been handed to another process (lease lost or shutdown timeout). `requeued` counts jobs
    given back to their queue unstarted or unfinished at shutdown.
    """

    processed: int = 0
    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    dead: int = 0
    lost: int = 0
    requeued: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def add_success(self) -> None:
        """Count one succeeded attempt; the same as `add(processed=1, succeeded=1)`, faster."""
        with self._lock:
            self.processed += 1
            self.succeeded += 1

    def snapshot(self) -> RunnerStats:
        with self._lock:
            return RunnerStats(
                processed=self.processed,
                succeeded=self.succeeded,
                failed=self.failed,
                retried=self.retried,
                dead=self.dead,
                lost=self.lost,
                requeued=self.requeued,
            )
