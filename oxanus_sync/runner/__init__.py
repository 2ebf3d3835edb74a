"""The worker side: fetchers, thread pools, heartbeat, scheduler and shutdown."""

from oxanus_sync.runner.counters import RunnerStats
from oxanus_sync.runner.runner import DrainTimeoutError, Runner

__all__ = ["DrainTimeoutError", "Runner", "RunnerStats"]
