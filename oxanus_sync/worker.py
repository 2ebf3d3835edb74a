"""`Worker`, the base class of job types: its fields are the job's arguments."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Self

from typing_extensions import dataclass_transform

from oxanus_sync.context import Context
from oxanus_sync.errors import ConfigurationError, SerializationError
from oxanus_sync.unique import CONFLICT_POLICIES, OnConflict


@dataclass_transform(field_specifiers=(dataclasses.field,))
class Worker:
    """Base class of a job type.

    Subclasses become dataclasses: their annotated fields are the job's arguments, stored as
    JSON when the job is enqueued and passed back to the constructor when it runs.

    Example:
        class SendEmail(Worker, name="send_email"):
            to: str
            subject: str

            def process(self, ctx: Context[AppState]) -> None:
                ctx.shared.mailer.send(self.to, self.subject)

    Class settings, all optional:
        job_name: the stable name stored in Redis; defaults to "module.QualName". Set it (or
            pass `name=` in the class statement) so that moving the class does not orphan
            queued jobs.
        max_retries: overrides the queue's `RetryPolicy.max_retries` for this job type.
        retry_on: exception types that are retried; any other exception sends the job to the
            dead set at once. Defaults to every `Exception`.
        timeout_s: the maximum time an attempt may run, in seconds. At the deadline the
            attempt is recorded as timed out and retried or sent dead by the retry policy.
            `oxanus_sync.runner.watchdog` says what happens to the thread.
        unique_conflict: what an enqueue does while a job of this type with the same
            `unique_key()` exists in the queue: "skip" (the default) keeps the existing job,
            "replace" gives it the new arguments and due time if it has not started yet.
    """

    job_name: ClassVar[str] = ""
    max_retries: ClassVar[int | None] = None
    retry_on: ClassVar[tuple[type[BaseException], ...]] = (Exception,)
    timeout_s: ClassVar[float | None] = None
    unique_conflict: ClassVar[OnConflict] = "skip"

    _arg_names: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, *, name: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        dataclasses.dataclass(cls)

        if name is not None:
            cls.job_name = name
        elif "job_name" not in cls.__dict__:
            cls.job_name = f"{cls.__module__}.{cls.__qualname__}"
        if not cls.job_name or not isinstance(cls.job_name, str):
            raise ConfigurationError(f"{cls.__qualname__}.job_name must be a non-empty string")

        if cls.unique_conflict not in CONFLICT_POLICIES:
            raise ConfigurationError(
                f'{cls.__qualname__}.unique_conflict is {cls.unique_conflict!r}: use "skip" '
                'or "replace"'
            )

        cls._arg_names = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]

    def process(self, ctx: Context[Any]) -> None:
        """Run the job. Raise to fail this attempt; return to succeed."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement process(self, ctx)")

    def unique_key(self) -> str | None:
        """Return the key that makes this job unique in its queue, or None (the default).

        Override it to derive a key from the arguments, for example `str(self.tenant_id)`.
        Keys are scoped by job type, so two types may return the same key.
        """
        return None

    def retry_delay(self, attempt: int) -> float | None:
        """Return the delay in seconds before retry number `attempt`, or None for the queue's.

        Override it to give this job type its own backoff.
        """
        return None

    def to_args(self) -> dict[str, Any]:
        """Return the job's arguments as a dict, the form stored in the payload."""
        return {name: getattr(self, name) for name in self._arg_names}

    @classmethod
    def from_args(cls, args: dict[str, Any]) -> Self:
        """Rebuild a job from stored arguments; raise `SerializationError` if they do not fit."""
        try:
            return cls(**args)
        except TypeError as error:
            raise SerializationError(
                f"stored arguments {sorted(args)} do not match the fields of "
                f"{cls.job_name} {list(cls._arg_names)}: {error}"
            ) from error
