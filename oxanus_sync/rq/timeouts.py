"""The timeout exception, under RQ's name.

`JobTimeoutException` is `oxanus_sync.errors.JobTimeout`, the exception raised inside a job's
thread at its deadline. Unlike RQ's, it derives from `BaseException`, so a job's own
`except Exception` does not swallow it and keep the job running past its deadline.
"""

from __future__ import annotations

from oxanus_sync.errors import JobTimeout

JobTimeoutException = JobTimeout

__all__ = ["JobTimeoutException"]
