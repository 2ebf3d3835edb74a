"""`Config`: the queues and job types a Runner serves, and its timing settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from oxanus_sync.client import Client
from oxanus_sync.cron import CronJob, MissedPolicy
from oxanus_sync.errors import ConfigurationError
from oxanus_sync.queue import Queue, QueueFamily, RetryPolicy, validate_queue_name
from oxanus_sync.validation import check_integer, check_seconds
from oxanus_sync.worker import Worker

W = TypeVar("W", bound=type[Worker])


@dataclass(frozen=True)
class RunnerSettings:
    """Timing and limits of a Runner process. Every duration is in seconds.

    Attributes:
        shutdown_timeout_s: how long a stopping Runner lets running jobs finish before it puts
            them back in their queues.
        heartbeat_interval_s: how often the Runner renews its leases and looks for the jobs of
            stopped Runners.
        lease_s: how long a lease lasts without renewal. A job held by a Runner that dies runs
            again between `lease_s` and `lease_s + heartbeat_interval_s` after the dead
            Runner's last heartbeat.
        scheduler_interval_s: the maximum time between two checks for due delayed jobs and
            retries, so a job runs at most about this late.
        block_timeout_s: how long an idle fetcher waits in BLMOVE before it checks again.
        max_reclaims: how many times a job may be taken back from a stopped Runner before it
            goes to the dead set, as it may be what stops its Runners.
        unknown_type_retry: how a job of a type this Runner did not register is retried before
            it goes dead, so that a newer Runner can take it during a deploy. By default 10
            retries after 5 s, 10 s, 20 s... up to 5 min each, about 25 min in all.
        dead_max_jobs: how many jobs each queue's dead set keeps, the oldest dropped first.
        dead_max_age_s: how long a dead job is kept.
    """

    shutdown_timeout_s: float = 30.0
    heartbeat_interval_s: float = 1.0
    lease_s: float = 5.0
    scheduler_interval_s: float = 0.05
    block_timeout_s: float = 2.0
    max_reclaims: int = 5
    unknown_type_retry: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(
            max_retries=10, base_delay_s=5.0, factor=2.0, max_delay_s=300.0, jitter=0.1
        )
    )
    dead_max_jobs: int = 10_000
    dead_max_age_s: float = 30 * 24 * 3600.0

    def __post_init__(self) -> None:
        for name in (
            "shutdown_timeout_s",
            "heartbeat_interval_s",
            "lease_s",
            "scheduler_interval_s",
            "block_timeout_s",
            "dead_max_age_s",
        ):
            check_seconds(name, getattr(self, name))
        check_integer("max_reclaims", self.max_reclaims, minimum=0)
        if not isinstance(self.unknown_type_retry, RetryPolicy):
            raise ConfigurationError(
                f"unknown_type_retry must be a RetryPolicy, got {self.unknown_type_retry!r}"
            )
        check_integer("dead_max_jobs", self.dead_max_jobs, minimum=1)
        if self.lease_s < 2 * self.heartbeat_interval_s:
            raise ConfigurationError(
                f"lease_s ({self.lease_s}) must be at least twice heartbeat_interval_s "
                f"({self.heartbeat_interval_s}), or a live Runner could lose its jobs"
            )


class Config:
    """The queues and job types that a Runner serves.

    `context` is the default value of `ctx.shared` for every job, used when the Runner is not
    given one; the `oxanus-sync worker` command relies on it. A function that builds and returns
    the Config can create it lazily (database pools, clients).

    Example:
        config = Config(client=Client.from_url("redis://localhost:6379/0"))
        config.register_queue(Queue("emails", QueueConfig(concurrency=8)))
        config.register(SendEmail)
    """

    def __init__(
        self,
        *,
        client: Client | None = None,
        settings: RunnerSettings | None = None,
        context: Any = None,
    ) -> None:
        self.client = client
        self.settings = settings or RunnerSettings()
        self.context = context
        self.queues: dict[str, Queue] = {}
        self.families: dict[str, QueueFamily] = {}
        self.job_types: dict[str, type[Worker]] = {}
        self.cron_jobs: dict[str, CronJob] = {}

    def register_queue(self, queue: Queue) -> Queue:
        """Serve `queue`; registering the same name with another policy is an error."""
        if not isinstance(queue, Queue):
            raise ConfigurationError(
                f"expected a Queue, got {queue!r}; use Queue('name', QueueConfig(...))"
            )
        if queue.name in self.families:
            raise ConfigurationError(
                f"{queue.name!r} is already registered as a queue family; give the static "
                "queue or the family another name"
            )
        existing = self.queues.get(queue.name)
        if existing is not None and existing != queue:
            raise ConfigurationError(
                f"queue {queue.name!r} is already registered with {existing.config}; "
                f"register it once, not again with {queue.config}"
            )
        self.queues[queue.name] = queue
        return queue

    def register_family(self, family: QueueFamily) -> QueueFamily:
        """Serve every member of `family`; registering the same prefix again differently is an
        error, and so is a family named like a registered static queue."""
        if not isinstance(family, QueueFamily):
            raise ConfigurationError(
                f"expected a QueueFamily, got {family!r}; use "
                "QueueFamily('prefix', QueueConfig(...))"
            )
        if family.prefix in self.queues:
            raise ConfigurationError(
                f"{family.prefix!r} is already registered as a static queue; give the static "
                "queue or the family another name"
            )
        existing = self.families.get(family.prefix)
        if existing is not None and existing != family:
            raise ConfigurationError(
                f"queue family {family.prefix!r} is already registered as {existing}; "
                f"register it once, not again as {family}"
            )
        self.families[family.prefix] = family
        return family

    def served(self) -> list[Queue | QueueFamily]:
        """Return the static queues and then the queue families, in registration order."""
        return [*self.queues.values(), *self.families.values()]

    def register(self, job_type: W) -> W:
        """Allow this Runner to execute `job_type`; usable as a class decorator."""
        if not (isinstance(job_type, type) and issubclass(job_type, Worker)) or job_type is Worker:
            raise ConfigurationError(f"expected a Worker subclass, got {job_type!r}")
        existing = self.job_types.get(job_type.job_name)
        if existing is not None and existing is not job_type:
            raise ConfigurationError(
                f"two job types share the name {job_type.job_name!r}: {existing.__module__}."
                f"{existing.__qualname__} and {job_type.__module__}.{job_type.__qualname__}; "
                "give one of them another job_name"
            )
        self.job_types[job_type.job_name] = job_type
        return job_type

    def register_cron(
        self,
        expression: str,
        job: Worker,
        queue: Queue | str,
        *,
        timezone: str = "UTC",
        name: str | None = None,
        missed: MissedPolicy = "latest",
    ) -> CronJob:
        """Enqueue `job` on `queue` at every tick of the cron `expression` in `timezone`.

        The job's type and, given as a `Queue`, the queue are registered too. Ticks that pass
        while no Runner is up follow `missed`: "latest" runs the most recent one once when a
        Runner returns, "skip" drops them. See `oxanus_sync.cron` for the expression syntax
        and the daylight-saving rules.
        """
        # A member of a queue family is no static queue name, so it is rejected here too.
        queue_name = queue.name if isinstance(queue, Queue) else validate_queue_name(queue)
        cron_job = CronJob.build(
            expression, job, queue_name, timezone=timezone, name=name, missed=missed
        )
        if cron_job.name in self.cron_jobs:
            raise ConfigurationError(
                f"periodic job {cron_job.name!r} is already registered; pass name= to tell "
                "two periodic jobs apart"
            )
        if isinstance(queue, Queue):
            self.register_queue(queue)
        self.register(type(job))
        self.cron_jobs[cron_job.name] = cron_job
        return cron_job

    def validate(self) -> None:
        """Raise `ConfigurationError` unless a Runner can start with this config."""
        if not self.queues and not self.families:
            raise ConfigurationError(
                "no queue registered: call config.register_queue(Queue(...)) or "
                "config.register_family(QueueFamily(...))"
            )
        if not self.job_types:
            raise ConfigurationError("no job type registered: call config.register(YourWorker)")
        for cron_job in self.cron_jobs.values():
            if cron_job.queue not in self.queues:
                raise ConfigurationError(
                    f"periodic job {cron_job.name!r} enqueues to queue {cron_job.queue!r}, "
                    "which is not registered: call config.register_queue() for it"
                )
