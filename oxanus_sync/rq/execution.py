"""Running one claimed RQ-layer job: check it, call its function, record the outcome.

Each outcome is one script call that also acknowledges the job (`rq_finish.lua`,
`rq_fail.lua`), so a job's record and its place in the queue never disagree. The worker claims
the next job itself, instead of claiming it while recording, so that queue priority holds.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from oxanus_sync.client import Client
from oxanus_sync.config import RunnerSettings
from oxanus_sync.envelope import decode_payload
from oxanus_sync.errors import JobTimeout, SerializationError
from oxanus_sync.rq.dependencies import release_dependents
from oxanus_sync.rq.exceptions import DeserializationError, UnsafeCallableError
from oxanus_sync.rq.functions import FunctionPolicy
from oxanus_sync.rq.job import Job, _current_job, decode_arguments
from oxanus_sync.rq.options import Retry
from oxanus_sync.rq.payload import JOB_TYPE, RQCall
from oxanus_sync.rq.serializers import JSONSerializer, Serializer
from oxanus_sync.runner.watchdog import Watch, Watchdog
from oxanus_sync.storage.records import ClaimedJob
from oxanus_sync.storage.rq_store import FailureRecord, RQStorage

logger = logging.getLogger(__name__)

DEFAULT_RESULT_TTL = 500
DEFAULT_FAILURE_TTL = 365 * 24 * 3600

ExceptionHandler = Callable[[Job, type[BaseException], BaseException, Any], Any]


@dataclass(frozen=True)
class _Failure:
    """Why an attempt failed: the exception, or a reason found before the function ran."""

    error_type: str
    message: str
    traceback: str
    retryable: bool = True
    exception: BaseException | None = None


class RQExecutor:
    """Runs RQ-layer jobs for one worker; safe to use from several pool threads at once."""

    def __init__(
        self,
        *,
        client: Client,
        process_id: str,
        worker_name: str,
        serializer: Serializer | None = None,
        policy: FunctionPolicy | None = None,
        default_result_ttl: int = DEFAULT_RESULT_TTL,
        exception_handlers: Sequence[ExceptionHandler] = (),
        disable_default_exception_handler: bool = False,
        settings: RunnerSettings | None = None,
        watchdog: Watchdog | None = None,
        closed: threading.Event | None = None,
    ) -> None:
        self.client = client
        self.store = RQStorage(client.storage)
        self.process_id = process_id
        self.worker_name = worker_name
        self.serializer = serializer or JSONSerializer()
        self.policy = policy or FunctionPolicy()
        self.default_result_ttl = default_result_ttl
        self.exception_handlers = list(exception_handlers)
        self.disable_default_exception_handler = disable_default_exception_handler
        self.settings = settings or RunnerSettings()
        self.watchdog = watchdog
        self.closed = closed or threading.Event()
        # False for Queue(is_async=False), which runs each job once, as RQ does.
        self.retries_enabled = True

    def perform(self, claimed: ClaimedJob) -> bool:
        """Run one claimed job and record its outcome; return whether its function was called."""
        problem = self._check(claimed)
        if isinstance(problem, _Failure):
            self._record_failure(claimed, None, None, problem)
            return False
        call = problem

        status, fields = self.store.start(claimed.queue, claimed.id, self.worker_name)
        if status != "started":
            # Canceled, deleted or expired (its ttl) while it waited: acknowledge it unrun.
            self._retrying(
                lambda: self.store.finish(
                    claimed.queue,
                    self.process_id,
                    claimed.id,
                    return_value=b"",
                    result_ttl_ms=0,
                    worker_name=self.worker_name,
                )
            )
            logger.info(
                "job skipped, it was %s job_id=%s queue=%s type=%s",
                "canceled" if status == "canceled" else "deleted or expired",
                claimed.id,
                claimed.queue,
                call.func,
            )
            return False

        job = Job(
            claimed.id, claimed.queue, call, fields, client=self.client, serializer=self.serializer
        )
        try:
            function = self.policy.resolve(call.func)
            args, kwargs = decode_arguments(call, self.serializer)
        except (UnsafeCallableError, DeserializationError) as error:
            self._record_failure(claimed, call, job, _failure_of(error, retryable=False))
            return False
        except Exception as error:  # noqa: BLE001 - an import error fails the job, not the worker
            self._record_failure(claimed, call, job, _failure_of(error))
            return False

        self._run(claimed, call, job, function, args, kwargs)
        return True

    def _check(self, claimed: ClaimedJob) -> RQCall | _Failure:
        if claimed.reclaims > self.settings.max_reclaims:
            return _Failure(
                "ReclaimLimitExceeded",
                f"taken back {claimed.reclaims} times from workers that stopped while running "
                f"it (limit {self.settings.max_reclaims}); it may be crashing its worker",
                "",
                retryable=False,
            )
        signer = self.client.signer
        if signer is not None:
            reason = signer.check(claimed.payload, claimed.signature)
            if reason is not None:
                return _Failure("SignatureError", f"rejected without running: {reason}", "", False)
        try:
            envelope = decode_payload(claimed.payload)
            if envelope.job_type != JOB_TYPE:
                raise SerializationError(
                    f"job type {envelope.job_type!r} is not an oxanus_sync.rq job; serve this "
                    "queue with a native Runner"
                )
            return RQCall.from_args(envelope.args)
        except SerializationError as error:
            return _Failure("SerializationError", str(error), "", retryable=False)

    def _run(
        self,
        claimed: ClaimedJob,
        call: RQCall,
        job: Job,
        function: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        started = time.monotonic()
        logger.debug(
            "job started job_id=%s queue=%s type=%s attempt=%d",
            claimed.id,
            claimed.queue,
            call.func,
            claimed.attempt + 1,
        )
        watch = self._watch(claimed, call)
        job._stop_requested = watch.cancelled if watch is not None else None
        token = _current_job.set(job)
        failure: _Failure | None = None
        result: Any = None
        try:
            try:
                result = function(*args, **kwargs)
            finally:
                if watch is not None:
                    watch.leave()
                    self.watchdog.unwatch(watch)  # type: ignore[union-attr]
        except BaseException as error:  # noqa: BLE001 - a job's failure must never end the thread
            failure = _failure_of(error)
        finally:
            _current_job.reset(token)

        duration_ms = (time.monotonic() - started) * 1000
        if watch is not None and watch.timed_out:
            logger.warning(
                "job returned after its timeout, result discarded job_id=%s queue=%s type=%s "
                "duration_ms=%.1f",
                claimed.id,
                claimed.queue,
                call.func,
                duration_ms,
            )
            return

        if failure is None:
            failure = self._succeed(claimed, call, job, result, duration_ms)
        if failure is not None:
            self._record_failure(claimed, call, job, failure)

    def _watch(self, claimed: ClaimedJob, call: RQCall) -> Watch | None:
        # Jobs without a timeout are watched too, so that a cancel request reaches them.
        if self.watchdog is None:
            return None
        watch = Watch(
            job=claimed,
            instance=call,
            thread_id=threading.get_ident(),
            deadline=time.monotonic() + call.timeout if call.timeout > 0 else None,
            record_timeout=lambda: self._record_timeout(claimed, call),
        )
        self.watchdog.watch(watch)
        return watch

    def _record_timeout(self, claimed: ClaimedJob, call: RQCall) -> None:
        # Runs on the watchdog's thread at the deadline, while the job's thread may still run.
        failure = _Failure(
            "oxanus_sync.errors.JobTimeout",
            f"JobTimeoutException: job exceeded its timeout of {call.timeout} s",
            "",
            exception=JobTimeout(f"job exceeded its timeout of {call.timeout} s"),
        )
        job = None
        try:
            job = Job.load(self.client, claimed.queue, claimed.id, self.serializer)
        except Exception:  # noqa: BLE001 - the record may be gone; the timeout is still recorded
            logger.debug("no record to pass to failure callbacks job_id=%s", claimed.id)
        self._record_failure(claimed, call, job, failure)

    # Success

    def _succeed(
        self, claimed: ClaimedJob, call: RQCall, job: Job, result: Any, duration_ms: float
    ) -> _Failure | None:
        callback = (call.callbacks or {}).get("success")
        if callback is not None:
            try:
                self.policy.resolve(callback[0])(job, self.client.redis, result)
            except Exception as error:  # noqa: BLE001 - RQ fails the job when its callback fails
                return _failure_of(error)

        stored = self._store_value(claimed, call, result)
        ttl = call.result_ttl if call.result_ttl is not None else self.default_result_ttl
        owned = self._retrying(
            lambda: self.store.finish(
                claimed.queue,
                self.process_id,
                claimed.id,
                return_value=stored,
                result_ttl_ms=ttl * 1000 if ttl > 0 else ttl,
                worker_name=self.worker_name,
            )
        )
        if not owned:
            _log_not_owned(claimed, call)
            return None
        logger.info(
            "job succeeded job_id=%s queue=%s type=%s attempt=%d duration_ms=%.1f",
            claimed.id,
            claimed.queue,
            call.func,
            claimed.attempt + 1,
            duration_ms,
        )
        if owned == 2:
            self._release(claimed)
        return None

    def _store_value(self, claimed: ClaimedJob, call: RQCall, result: Any) -> bytes:
        try:
            return self.serializer.dumps(result)
        except (TypeError, ValueError) as error:
            logger.warning(
                "job return value cannot be stored, None stored instead job_id=%s queue=%s "
                "type=%s error=%s",
                claimed.id,
                claimed.queue,
                call.func,
                error,
            )
            return self.serializer.dumps(None)

    # Failure

    def _record_failure(
        self, claimed: ClaimedJob, call: RQCall | None, job: Job | None, failure: _Failure
    ) -> None:
        if call is not None and job is not None and failure.exception is not None:
            failure = self._handle(call, job, failure)

        retries_left = _retries_left(job, call)
        mode, delay_s, at_front = "failed", 0, False
        retryable = failure.retryable and self.retries_enabled
        if call is not None and retryable and retries_left > 0:
            delay_s = Retry.get_interval(retries_left, call.retry_intervals or [0])
            mode = "retry" if delay_s > 0 else "requeue"
            at_front = call.retry_at_front
            retries_left -= 1
        elif self.disable_default_exception_handler:
            mode = "failed_unregistered"

        failure_ttl = (call.failure_ttl if call else None) or DEFAULT_FAILURE_TTL
        record = FailureRecord(
            mode=mode,
            delay_ms=delay_s * 1000,
            error_json=json.dumps(
                {
                    "type": failure.error_type,
                    "message": failure.message,
                    "traceback": failure.traceback,
                    "attempt": claimed.attempt + 1,
                }
            ),
            traceback=failure.traceback or f"{failure.error_type}: {failure.message}",
            failure_ttl_ms=failure_ttl * 1000 if failure_ttl > 0 else -1,
            retries_left=retries_left,
            at_front=at_front,
            worker_name=self.worker_name,
        )
        settings = self.settings
        owned = self._retrying(
            lambda: self.store.fail(
                claimed.queue,
                self.process_id,
                claimed.id,
                record,
                dead_max_jobs=settings.dead_max_jobs,
                dead_max_age_ms=round(settings.dead_max_age_s * 1000),
            )
        )
        func = call.func if call else "?"
        if not owned:
            _log_not_owned(claimed, call)
        elif mode in ("retry", "requeue"):
            logger.warning(
                "job failed, retrying in %ds job_id=%s queue=%s type=%s attempt=%d error=%s: %s",
                delay_s,
                claimed.id,
                claimed.queue,
                func,
                claimed.attempt + 1,
                failure.error_type,
                failure.message,
            )
        else:
            logger.error(
                "job failed job_id=%s queue=%s type=%s attempt=%d error=%s: %s\n%s",
                claimed.id,
                claimed.queue,
                func,
                claimed.attempt + 1,
                failure.error_type,
                failure.message,
                failure.traceback,
            )
            # Dependents that allow their dependencies to fail may run now.
            if owned == 2:
                self._release(claimed)

    def _handle(self, call: RQCall, job: Job, failure: _Failure) -> _Failure:
        """Run the failure callback and the exception handlers, as RQ does on every attempt."""
        error = failure.exception
        assert error is not None
        callback = (call.callbacks or {}).get("failure")
        if callback is not None:
            try:
                self.policy.resolve(callback[0])(
                    job, self.client.redis, type(error), error, error.__traceback__
                )
            except Exception as callback_error:  # noqa: BLE001 - recorded as the job's failure
                failure = _failure_of(callback_error)
        for handler in self.exception_handlers:
            try:
                if handler(job, type(error), error, error.__traceback__) is False:
                    break
            except Exception:
                logger.exception(
                    "exception handler failed job_id=%s queue=%s type=%s",
                    job.id,
                    job.origin,
                    call.func,
                )
        return failure

    def _release(self, claimed: ClaimedJob) -> None:
        try:
            release_dependents(self.client, claimed.queue, claimed.id)
        except redis.RedisError:
            logger.exception(
                "could not release the dependents of job_id=%s queue=%s; they stay deferred",
                claimed.id,
                claimed.queue,
            )

    def _retrying(self, record: Callable[[], int]) -> int:
        # The job stays in this process's processing list until its outcome is recorded, so
        # keep trying through a Redis outage instead of dropping the outcome.
        backoff_s = 0.1
        while True:
            try:
                return record()
            except (redis.ConnectionError, redis.TimeoutError) as error:
                if self.closed.is_set():
                    logger.error("gave up recording a job outcome at worker stop: %s", error)
                    return 0
                logger.warning(
                    "could not record a job outcome, retrying in %.1fs: %s", backoff_s, error
                )
            self.closed.wait(backoff_s)
            backoff_s = min(backoff_s * 2, 5.0)


def run_inline(
    client: Client, queue: str, job_id: str, process_id: str, serializer: Serializer
) -> None:
    """Run a job that `Queue(is_async=False)` just created in the processing list of
    `process_id`, in the calling thread, with no retries, as RQ does."""
    fields = client.storage.job_fields(queue, job_id)
    claimed = ClaimedJob(
        queue=queue,
        id=job_id,
        payload=fields["payload"],
        attempt=0,
        reclaims=0,
        enqueued_at_ms=int(fields["enqueued_at"]),
        due_at_ms=None,
        signature=fields.get("sig"),
    )
    executor = RQExecutor(
        client=client, process_id=process_id, worker_name="sync", serializer=serializer
    )
    executor.retries_enabled = False
    executor.perform(claimed)


def _failure_of(error: BaseException, *, retryable: bool = True) -> _Failure:
    kind = type(error)
    return _Failure(
        f"{kind.__module__}.{kind.__qualname__}",
        str(error),
        "".join(traceback.format_exception(error)),
        retryable=retryable,
        exception=error,
    )


def _retries_left(job: Job | None, call: RQCall | None) -> int:
    if call is None or not call.retry_max:
        return 0
    if job is None:
        return 0
    return job.retries_left or 0


def _log_not_owned(claimed: ClaimedJob, call: RQCall | None) -> None:
    logger.warning(
        "job outcome discarded job_id=%s queue=%s type=%s: this worker no longer owned the "
        "job, because its lease expired or shutdown returned the job to its queue",
        claimed.id,
        claimed.queue,
        call.func if call else "?",
    )
