"""Running one claimed job: decode it, call `process`, and record the outcome in one script call.

Recording the outcome also claims the queue's next ready job for the same thread when the
Runner is not stopping, so a busy queue costs one round trip per job.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import traceback
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import redis

from oxanus_sync.config import Config
from oxanus_sync.context import Context, JobMeta
from oxanus_sync.envelope import decode_payload, decode_state, encode_state
from oxanus_sync.errors import RetryLater, SerializationError
from oxanus_sync.queue import Queue, QueueFamily
from oxanus_sync.runner.batching import FinishBatcher
from oxanus_sync.runner.counters import RunnerStats
from oxanus_sync.runner.watchdog import Watch, Watchdog
from oxanus_sync.signing import Signer
from oxanus_sync.storage.records import ClaimedJob
from oxanus_sync.storage.store import FinishCall, Storage
from oxanus_sync.worker import Worker

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Outcome:
    """The result of one attempt. `retry_delay_s` is None for success and for a dead job."""

    succeeded: bool
    error: dict[str, Any] | None = None
    retry_delay_s: float | None = None
    # True when the watchdog already recorded this attempt as timed out.
    recorded: bool = False
    timed_out: bool = False


_SUCCEEDED = _Outcome(succeeded=True)


class JobExecutor:
    """Runs the claimed jobs of one queue, or of every member of a queue family, on its pool."""

    def __init__(
        self,
        *,
        queue: Queue | QueueFamily,
        config: Config,
        storage: Storage,
        process_id: str,
        shared: object,
        stats: RunnerStats,
        stopping: threading.Event,
        signer: Signer | None = None,
        closed: threading.Event | None = None,
        watchdog: Watchdog | None = None,
    ) -> None:
        self.queue = queue
        self.config = config
        self.storage = storage
        self.process_id = process_id
        self.shared = shared
        self.stats = stats
        self.stopping = stopping
        self.signer = signer
        self.closed = closed or threading.Event()
        self.watchdog = watchdog

        # Guards `running`, the ids of jobs whose process() is executing now, and `_claimed`,
        # the ids this process claimed and has not yet recorded or given back.
        self._lock = threading.Lock()
        self.running: set[str] = set()
        self._claimed: set[str] = set()

        # Outcomes that pool threads record at the same moment share one pipeline.
        self._batcher: FinishBatcher[FinishCall, tuple[bool, list[ClaimedJob]]] = FinishBatcher(
            storage.finish_many
        )

    def running_ids(self) -> list[str]:
        """Return the ids of the jobs whose `process()` is executing now."""
        with self._lock:
            return list(self.running)

    def track(self, jobs: list[ClaimedJob]) -> None:
        """Remember claimed jobs until their outcome is recorded; see `claimed_ids`."""
        with self._lock:
            self._claimed.update(job.id for job in jobs)

    def claimed_ids(self) -> set[str]:
        """Return the ids of jobs claimed by this process and not yet recorded or given back."""
        with self._lock:
            return set(self._claimed)

    def _untrack(self, job_id: str) -> None:
        with self._lock:
            self._claimed.discard(job_id)

    def _hand_over(self, job_id: str, next_jobs: list[ClaimedJob]) -> None:
        # The recorded job leaves the claimed ids and the jobs claimed in its place join them.
        with self._lock:
            self._claimed.discard(job_id)
            for next_job in next_jobs:
                self._claimed.add(next_job.id)

    def run_chain(self, job: ClaimedJob | None) -> None:
        """Run `job`, then each next job claimed while recording the previous outcome."""
        while job is not None:
            if self.stopping.is_set():
                self._give_back(job)
                return
            job = self._run_one(job)

    def _give_back(self, job: ClaimedJob) -> None:
        requeued = self.storage.requeue(self.queue.name, self.process_id, job.id)
        self._untrack(job.id)
        if requeued:
            self.stats.add(requeued=1)
            logger.info("job requeued unstarted at shutdown job_id=%s queue=%s", job.id, job.queue)

    def _run_one(self, job: ClaimedJob) -> ClaimedJob | None:
        started = time.monotonic()
        with self._lock:
            self.running.add(job.id)
        try:
            job_type, outcome = self._execute(job)
        except Exception as error:
            # A bug in the library or in a Worker override such as retry_delay(): the job must
            # still leave the processing list, so it goes dead with the error.
            logger.exception("could not run job_id=%s queue=%s", job.id, job.queue)
            job_type, outcome = "?", _Outcome(False, _error_details(error, job.attempt + 1))
        finally:
            with self._lock:
                self.running.discard(job.id)

        duration_ms = (time.monotonic() - started) * 1000
        if outcome.recorded:
            self._untrack(job.id)
            logger.warning(
                "job returned after its timeout, result discarded job_id=%s queue=%s type=%s "
                "duration_ms=%.1f",
                job.id,
                job.queue,
                job_type,
                duration_ms,
            )
            return None
        claim_next = 0 if self.stopping.is_set() else 1
        owned, next_jobs = self._record_until_done(job, job_type, outcome, claim_next)
        self._hand_over(job.id, next_jobs)
        self._log_outcome(job, job_type, outcome, owned, duration_ms)
        return next_jobs[0] if next_jobs else None

    def _execute(self, job: ClaimedJob) -> tuple[str, _Outcome]:
        if job.problem is not None:
            return "?", _dead("CorruptJobError", f"the job could not be read: {job.problem}")

        settings = self.config.settings
        if job.reclaims > settings.max_reclaims:
            reason = (
                f"taken back {job.reclaims} times from Runners that stopped while running it "
                f"(limit {settings.max_reclaims}); it may be crashing its Runner"
            )
            return "?", _dead("ReclaimLimitExceeded", reason)

        if self.signer is not None:
            problem = self.signer.check(job.payload, job.signature)
            if problem is not None:
                return "?", _dead("SignatureError", f"rejected without running: {problem}")

        try:
            envelope = decode_payload(job.payload)
        except SerializationError as error:
            return "?", _dead("SerializationError", str(error))

        job_type = self.config.job_types.get(envelope.job_type)
        if job_type is None:
            return envelope.job_type, self._unknown_type(job, envelope.job_type)

        try:
            instance = job_type.from_args(envelope.args)
        except SerializationError as error:
            return envelope.job_type, _dead("SerializationError", str(error))
        except Exception as error:  # noqa: BLE001 - any constructor error rejects the arguments
            # A __post_init__ check, for example, rejected the stored arguments.
            return envelope.job_type, _Outcome(False, _error_details(error, job.attempt + 1))

        return envelope.job_type, self._call(job, instance)

    def _call(self, job: ClaimedJob, instance: Worker) -> _Outcome:
        watch = self._watch(job, instance)
        context = Context(
            shared=self.shared,
            meta=_meta(job, instance.job_name),
            state=decode_state(job.state),
            _saver=lambda value: self._save_state(job, value),
            _cancelled=watch.cancelled if watch else None,
        )
        logger.debug(
            "job started job_id=%s queue=%s type=%s attempt=%d",
            job.id,
            job.queue,
            instance.job_name,
            job.attempt + 1,
        )
        try:
            try:
                instance.process(context)
            finally:
                if watch is not None:
                    watch.leave()
                    self._unwatch(watch)
        except BaseException as error:  # noqa: BLE001 - a job's failure must never end the thread
            if watch is not None and watch.timed_out:
                return _Outcome(succeeded=False, recorded=True)
            return self._failure(job, instance, error)
        if watch is not None and watch.timed_out:
            return _Outcome(succeeded=False, recorded=True)
        return _SUCCEEDED

    def _watch(self, job: ClaimedJob, instance: Worker) -> Watch | None:
        if self.watchdog is None:
            return None
        timeout_s = instance.timeout_s
        watch = Watch(
            job=job,
            instance=instance,
            thread_id=threading.get_ident(),
            deadline=time.monotonic() + timeout_s if timeout_s else None,
            record_timeout=lambda: self._record_timeout(job, instance),
        )
        self.watchdog.watch(watch)
        return watch

    def _unwatch(self, watch: Watch) -> None:
        if self.watchdog is not None:
            self.watchdog.unwatch(watch)

    def _record_timeout(self, job: ClaimedJob, instance: Worker) -> None:
        # Runs on the watchdog's thread, at the deadline, while the job's thread may still run.
        details = {
            "type": "oxanus_sync.errors.JobTimeout",
            "message": f"timed out after {instance.timeout_s:g}s",
            "traceback": "",
            "attempt": job.attempt + 1,
        }
        outcome = replace(self._retry_or_dead(job, instance, details, None), timed_out=True)
        owned, _ = self._record_until_done(job, instance.job_name, outcome, claim_next=0)
        self._log_outcome(job, instance.job_name, outcome, owned, instance.timeout_s or 0.0)

    def _save_state(self, job: ClaimedJob, value: object) -> bool:
        saved = self.storage.save_state(
            self.queue.name, self.process_id, job.id, encode_state(value)
        )
        if not saved:
            logger.warning(
                "job state not saved job_id=%s queue=%s: this process no longer owns the job",
                job.id,
                job.queue,
            )
        return saved

    def _failure(self, job: ClaimedJob, instance: Worker, error: BaseException) -> _Outcome:
        details = _error_details(error, job.attempt + 1)
        if isinstance(error, RetryLater):
            return self._retry_or_dead(job, instance, details, error.delay_s)
        if not isinstance(error, instance.retry_on):
            return _Outcome(succeeded=False, error=details)
        return self._retry_or_dead(job, instance, details, None)

    def _retry_or_dead(
        self, job: ClaimedJob, instance: Worker, details: dict[str, Any], delay_s: float | None
    ) -> _Outcome:
        policy = self.queue.config.retry
        max_retries = (
            instance.max_retries if instance.max_retries is not None else policy.max_retries
        )
        retry_number = job.attempt + 1
        if retry_number > max_retries:
            return _Outcome(succeeded=False, error=details)

        if delay_s is None:
            delay_s = self._custom_delay(job, instance, retry_number)
        if delay_s is None or not math.isfinite(delay_s):
            delay_s = policy.delay_s(retry_number)
        return _Outcome(succeeded=False, error=details, retry_delay_s=max(delay_s, 0.0))

    def _custom_delay(self, job: ClaimedJob, instance: Worker, retry_number: int) -> float | None:
        try:
            return instance.retry_delay(retry_number)
        except Exception:
            logger.exception(
                "retry_delay() failed, using the queue's backoff job_id=%s queue=%s type=%s",
                job.id,
                job.queue,
                instance.job_name,
            )
            return None

    def _unknown_type(self, job: ClaimedJob, job_type: str) -> _Outcome:
        # During a rolling deploy an older Runner may claim a type that only newer ones register,
        # so retry for a while (RunnerSettings.unknown_type_retry) to let a newer Runner
        # take it, then give up.
        message = (
            f"unknown job type {job_type!r}: this Runner has not registered it; "
            "call config.register() with the Worker subclass of that name"
        )
        details = {
            "type": "UnknownJobTypeError",
            "message": message,
            "traceback": "",
            "attempt": job.attempt + 1,
        }
        policy = self.config.settings.unknown_type_retry
        if job.attempt + 1 > policy.max_retries:
            return _Outcome(succeeded=False, error=details)
        return _Outcome(
            succeeded=False, error=details, retry_delay_s=policy.delay_s(job.attempt + 1)
        )

    def _record_until_done(
        self, job: ClaimedJob, job_type: str, outcome: _Outcome, claim_next: int
    ) -> tuple[bool, list[ClaimedJob]]:
        # The job stays in this process's processing list until its outcome is recorded, so
        # keep trying through a Redis outage instead of dropping the result.
        backoff_s = 0.1
        while True:
            try:
                return self._record(job, outcome, claim_next)
            except (redis.ConnectionError, redis.TimeoutError) as error:
                if self.closed.is_set():
                    logger.error(
                        "gave up recording job outcome at Runner stop job_id=%s queue=%s "
                        "type=%s error=%s: %s; the job stays claimed and runs again when "
                        "another Runner reclaims it",
                        job.id,
                        job.queue,
                        job_type,
                        type(error).__name__,
                        error,
                    )
                    return False, []
                logger.warning(
                    "could not record job outcome, retrying in %.1fs job_id=%s queue=%s "
                    "type=%s error=%s: %s",
                    backoff_s,
                    job.id,
                    job.queue,
                    job_type,
                    type(error).__name__,
                    error,
                )
            self.closed.wait(backoff_s)
            backoff_s = min(backoff_s * 2, 5.0)
            claim_next = 0

    def _record(
        self, job: ClaimedJob, outcome: _Outcome, claim_next: int
    ) -> tuple[bool, list[ClaimedJob]]:
        throttle = self.queue.config.throttle
        if outcome.succeeded:
            call = self.storage.ack_call(
                self.queue.name, self.process_id, job.id, claim_next, throttle, unique=job.unique
            )
            return self._batcher.submit(call)

        settings = self.config.settings
        delay_ms = None if outcome.retry_delay_s is None else round(outcome.retry_delay_s * 1000)
        call = self.storage.fail_call(
            self.queue.name,
            self.process_id,
            job.id,
            retry_delay_ms=delay_ms,
            error=outcome.error or {},
            claim_next=claim_next,
            dead_max_jobs=settings.dead_max_jobs,
            dead_max_age_ms=round(settings.dead_max_age_s * 1000),
            throttle=throttle,
            timed_out=outcome.timed_out,
        )
        return self._batcher.submit(call)

    def _log_outcome(
        self, job: ClaimedJob, job_type: str, outcome: _Outcome, owned: bool, duration_ms: float
    ) -> None:
        attempt = job.attempt + 1
        if not owned:
            self.stats.add(lost=1)
            logger.warning(
                "job result discarded job_id=%s queue=%s type=%s attempt=%d: this process no "
                "longer owned the job, because its lease expired or shutdown returned the job "
                "to its queue (or a try cut off by a Redis error had already recorded it)",
                job.id,
                job.queue,
                job_type,
                attempt,
            )
            return

        if outcome.succeeded:
            self.stats.add_success()
            logger.info(
                "job succeeded job_id=%s queue=%s type=%s attempt=%d duration_ms=%.1f",
                job.id,
                job.queue,
                job_type,
                attempt,
                duration_ms,
            )
            return

        error = outcome.error or {}
        summary = f"{error.get('type')}: {error.get('message')}"
        if outcome.retry_delay_s is not None:
            self.stats.add(processed=1, failed=1, retried=1)
            logger.warning(
                "job failed, retrying in %.1fs job_id=%s queue=%s type=%s attempt=%d error=%s",
                outcome.retry_delay_s,
                job.id,
                job.queue,
                job_type,
                attempt,
                summary,
            )
        else:
            self.stats.add(processed=1, failed=1, dead=1)
            logger.error(
                "job dead job_id=%s queue=%s type=%s attempt=%d error=%s\n%s",
                job.id,
                job.queue,
                job_type,
                attempt,
                summary,
                error.get("traceback", ""),
            )


def _dead(error_type: str, message: str) -> _Outcome:
    return _Outcome(
        succeeded=False, error={"type": error_type, "message": message, "traceback": ""}
    )


def _error_details(error: BaseException, attempt: int) -> dict[str, Any]:
    kind = type(error)
    return {
        "type": f"{kind.__module__}.{kind.__qualname__}",
        "message": str(error),
        "traceback": "".join(traceback.format_exception(error)),
        "attempt": attempt,
    }


def _meta(job: ClaimedJob, job_type: str) -> JobMeta:
    return JobMeta(
        id=job.id,
        queue=job.queue,
        job_type=job_type,
        attempt=job.attempt + 1,
        reclaims=job.reclaims,
        enqueued_at=_datetime(job.enqueued_at_ms),
        scheduled_at=_datetime(job.due_at_ms),
    )


def _datetime(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)
