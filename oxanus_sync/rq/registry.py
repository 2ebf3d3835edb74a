"""Job registries with RQ's names. Each is a view of one state of a queue's jobs.

The failed registry is the queue's dead set, so failed jobs also show as dead in
`oxanus-sync info`. The scheduled registry is the queue's scheduled and retry sets. The
started registry lists the jobs claimed by workers whose lease is valid. The finished, deferred
and canceled registries are sorted sets of their own (see `oxanus_sync.storage.keys`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from oxanus_sync.rq.connections import as_client, rq_storage
from oxanus_sync.rq.exceptions import InvalidJobOperation, NoSuchJobError

if TYPE_CHECKING:
    from oxanus_sync.rq.job import Job
    from oxanus_sync.rq.queue import Queue


class BaseRegistry:
    """The ids of one queue's jobs in one state. Pass `name` and `connection`, or `queue`."""

    registry = ""

    def __init__(
        self,
        name: str = "default",
        connection: Any = None,
        job_class: Any = None,
        queue: Queue | None = None,
        serializer: object = None,
    ) -> None:
        if queue is not None:
            self.name = queue.name
            self._client = queue._client
            self.serializer = serializer if serializer is not None else queue.serializer
        else:
            if connection is None:
                raise TypeError(f"{type(self).__name__}() needs connection= or queue=")
            self.name = name
            self._client = as_client(connection)
            self.serializer = serializer
        self.connection = self._client.redis

    def get_job_ids(
        self, start: int = 0, end: int = -1, desc: bool = False, cleanup: bool = True
    ) -> list[str]:
        ids = rq_storage(self._client).registry_ids(self.name, self.registry)
        if desc:
            ids.reverse()
        stop = None if end == -1 else end + 1
        return ids[start:stop]

    @property
    def count(self) -> int:
        return len(self.get_job_ids())

    def __len__(self) -> int:
        return self.count

    def __contains__(self, item: object) -> bool:
        job_id = getattr(item, "id", item)
        return job_id in self.get_job_ids()

    def cleanup(self) -> None:
        """Drop expired entries; reads already do, so this only exists for RQ compatibility."""
        self.get_job_ids()

    def remove(self, job: Job | str, delete_job: bool = False) -> int:
        """Remove the job from this registry; return 1 when it was there, else 0, as RQ does.

        The job keeps its record and status unless `delete_job` is true. The scheduled registry
        removes a job only by deleting it, because a scheduled id left out of it would never
        run, and the started registry cannot remove a running job.
        """
        job_id = job if isinstance(job, str) else job.id
        store = rq_storage(self._client)
        if self.registry == "started":
            raise InvalidJobOperation(
                f"job {job_id!r} is running and cannot be removed from the started registry; "
                "cancel or delete it instead"
            )
        if delete_job or self.registry == "scheduled":
            present = job_id in self
            store.delete(self.name, job_id)
            return int(present)
        return int(store.remove_from_registry(self.name, self.registry, job_id))

    def get_expiration_time(self, job: Job | str) -> datetime | None:
        job_id = job if isinstance(job, str) else job.id
        score = rq_storage(self._client).registry_score(self.name, self.registry, job_id)
        if score is None or score == float("inf"):
            return None
        return datetime.fromtimestamp(score / 1000, UTC)


class StartedJobRegistry(BaseRegistry):
    registry = "started"


class FinishedJobRegistry(BaseRegistry):
    registry = "finished"


class FailedJobRegistry(BaseRegistry):
    registry = "failed"

    def requeue(self, job_or_id: Job | str, at_front: bool = False) -> Job:
        """Put a failed job back on its queue."""
        from oxanus_sync.rq.job import Job

        job_id = job_or_id if isinstance(job_or_id, str) else job_or_id.id
        if not rq_storage(self._client).requeue(self.name, job_id, at_front=at_front):
            raise InvalidJobOperation(f"job {job_id!r} is not in the failed job registry")
        try:
            return Job.load(self._client, self.name, job_id, self.serializer)
        except NoSuchJobError:
            raise InvalidJobOperation(f"job {job_id!r} has no record left") from None


class DeferredJobRegistry(BaseRegistry):
    registry = "deferred"


class ScheduledJobRegistry(BaseRegistry):
    registry = "scheduled"

    def get_scheduled_time(self, job_or_id: Job | str) -> datetime:
        job_id = job_or_id if isinstance(job_or_id, str) else job_or_id.id
        score = rq_storage(self._client).registry_score(self.name, "scheduled", job_id)
        if score is None:
            raise NoSuchJobError(f"job {job_id!r} is not scheduled")
        return datetime.fromtimestamp(score / 1000, UTC)


class CanceledJobRegistry(BaseRegistry):
    registry = "canceled"
