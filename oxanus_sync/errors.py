"""The exception hierarchy: every error raised by oxanus_sync derives from `OxanusError`."""

from __future__ import annotations


class OxanusError(Exception):
    """Base class of every error raised by oxanus_sync."""


class ConfigurationError(OxanusError):
    """A queue, job type, setting or connection was declared incorrectly."""


class SerializationError(OxanusError):
    """A job's arguments cannot be encoded as JSON, or a stored payload cannot be decoded."""


class EnqueueError(OxanusError):
    """A job could not be enqueued: invalid arguments, timing or destination, or Redis refused.

    `enqueued_ids` lists the jobs of a bulk enqueue that were stored before the failure.
    """

    enqueued_ids: list[str]

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.enqueued_ids = []


class NotReplicatedError(EnqueueError):
    """Jobs were stored on the primary, but fewer replicas than `Client.wait_replicas`
    acknowledged them within `Client.wait_timeout_ms`.

    `enqueued_ids` lists the stored jobs. They run normally unless the primary fails before
    its replicas receive them.
    """


class RedisUnavailableError(OxanusError):
    """Redis could not be reached within the configured time."""


class RetryLater(OxanusError):  # noqa: N818 - reads as an instruction, like dramatiq's Retry
    """Raised by a job to ask for another attempt after `delay_s` seconds.

    It counts against the job's retry limit and is logged as a warning like any failed attempt,
    but it is retried even when the job type's `retry_on` does not list it.
    """

    def __init__(self, delay_s: float = 0.0, reason: str = "") -> None:
        super().__init__(reason or f"retry requested in {delay_s:g}s")
        self.delay_s = delay_s
        self.reason = reason


# The two interruptions below derive from BaseException, outside OxanusError, so that a job's
# own `except Exception` does not swallow them and keep running past its deadline.


class JobTimeout(BaseException):
    """Raised inside a job's thread when the job runs past its `timeout_s`."""


class JobCancelled(BaseException):
    """Raised by `Context.raise_if_cancelled()` when the job was cancelled or timed out."""
