"""`Service`: a supervised background thread that repeats one step until it is stopped."""

from __future__ import annotations

import logging
import threading
import time

import redis

logger = logging.getLogger(__name__)

_FIRST_BACKOFF_S = 0.1
# Short enough that a queue resumes within about 2 s of Redis coming back.
_MAX_BACKOFF_S = 2.0
# A thread that keeps failing logs its Redis error once per this many seconds.
_LOG_EVERY_S = 30.0


class Service(threading.Thread):
    """A daemon thread that calls `step()` until `stop()`.

    An exception from `step()` is logged with the thread's name and the step runs again after
    a backoff that doubles up to `max_backoff_s` (2 s by default), so that a Redis outage or a
    bug never ends the thread silently. During a long outage each thread logs its Redis error
    once every 30 s, with the number of failures so far. `failures` counts consecutive failed
    steps (0 when healthy).
    """

    def __init__(self, name: str, *, max_backoff_s: float = _MAX_BACKOFF_S) -> None:
        super().__init__(name=name, daemon=True)
        self.max_backoff_s = max_backoff_s
        self.stopped = threading.Event()
        self.failures = 0
        self.last_error = ""
        self._logged_at = 0.0

    def step(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self.stopped.set()

    def run(self) -> None:
        backoff = min(_FIRST_BACKOFF_S, self.max_backoff_s)
        while not self.stopped.is_set():
            try:
                self.step()
            except redis.RedisError as error:
                self._record_failure(error)
                self._log_redis_error(error, backoff)
            except Exception as error:
                self._record_failure(error)
                logger.exception("%s: unexpected error, restarting in %.1fs", self.name, backoff)
            else:
                if self.failures:
                    logger.info("%s: recovered after %d failures", self.name, self.failures)
                self.failures = 0
                self._logged_at = 0.0
                backoff = min(_FIRST_BACKOFF_S, self.max_backoff_s)
                continue

            self.stopped.wait(backoff)
            backoff = min(backoff * 2, self.max_backoff_s)

    def _record_failure(self, error: Exception) -> None:
        self.failures += 1
        self.last_error = f"{type(error).__name__}: {error}"[:200]

    def _log_redis_error(self, error: redis.RedisError, backoff: float) -> None:
        now = time.monotonic()
        if now - self._logged_at < _LOG_EVERY_S:
            return
        self._logged_at = now
        logger.warning(
            "%s: Redis error (%d in a row), retrying in %.1fs: %s: %s",
            self.name,
            self.failures,
            backoff,
            type(error).__name__,
            error,
        )
