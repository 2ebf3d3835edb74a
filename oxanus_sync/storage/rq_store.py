"""`RQStorage`: the Redis operations of the RQ-compatible layer, on top of `Storage`.

Each RQ-layer job is an ordinary job of its queue plus an RQ record; the keys are documented in
`oxanus_sync.storage.keys`. Every change of more than one key is one of the `rq_*.lua` scripts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from oxanus_sync.storage.keys import QueueKeys, RQKeys
from oxanus_sync.storage.parsing import decode_text
from oxanus_sync.storage.scripts import execute_pipeline
from oxanus_sync.storage.store import Storage


@dataclass(frozen=True)
class RQResult:
    """One stored result: `type` is 1 for success and 2 for failure."""

    type: int
    return_value: bytes | None
    exc_string: str | None
    created_at_ms: int
    worker_name: str
    stream_id: str


@dataclass(frozen=True)
class RQEnqueue:
    """One job to create with `RQStorage.enqueue`.

    `mode` is "now", "at" (due at `due_ms`), "deferred" (waiting for its dependencies) or
    "inline" (claimed at once by `inline_process_id`, which runs it). `ttl_ms` is how long the
    job may wait before it starts, 0 for no limit.
    """

    job_id: str
    payload: bytes
    signature: bytes
    mode: str
    due_ms: int = 0
    at_front: bool = False
    meta_json: str = "{}"
    retries_left: int = 0
    ttl_ms: int = 0
    inline_process_id: str = ""


@dataclass(frozen=True)
class FailureRecord:
    """The outcome of one failed attempt, as `RQStorage.fail` records it."""

    mode: str
    delay_ms: int
    error_json: str
    traceback: str
    failure_ttl_ms: int
    retries_left: int
    at_front: bool
    worker_name: str
    final_status: str = "failed"


class RQStorage:
    """The RQ layer's records and registries, beside the queues of one `Storage`."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.redis = storage.redis
        self._script = storage._script

    def keys(self, queue: str) -> tuple[QueueKeys, RQKeys]:
        return self.storage.keys(queue), RQKeys.build(self.storage.namespace, queue)

    # Enqueue and dependencies

    def enqueue(self, queue: str, jobs: Sequence[RQEnqueue]) -> list[int]:
        """Create jobs and record the queue's name, in one round trip.

        Returns, per job, its enqueue time in ms on the server's clock, or 0 when a job with
        that id is still waiting or running.
        """
        keys, rq_keys = self.keys(queue)
        script = self._script["rq_enqueue"]
        pipe = self.redis.pipeline(transaction=False)
        pipe.sadd(self.storage.global_keys.queues, queue)
        for job in jobs:
            script.queue_in(
                pipe,
                [
                    keys.ready,
                    keys.scheduled,
                    keys.job(job.job_id),
                    rq_keys.record(job.job_id),
                    rq_keys.results(job.job_id),
                    rq_keys.deferred,
                    keys.processing(job.inline_process_id or "none"),
                ],
                [
                    job.job_id,
                    job.payload,
                    job.signature,
                    job.mode,
                    job.due_ms,
                    "1" if job.at_front else "0",
                    job.meta_json,
                    job.retries_left,
                    job.ttl_ms,
                ],
            )
        _, *replies = execute_pipeline(self.redis, pipe, [script])
        return [int(enqueued_at) if created else 0 for created, enqueued_at in replies]

    def add_dependent(self, parent: tuple[str, str], child: tuple[str, str]) -> None:
        """Record that `child` (queue, id) waits for `parent` (queue, id)."""
        _, rq_keys = self.keys(parent[0])
        self.redis.sadd(rq_keys.dependents(parent[1]), f"{child[0]}/{child[1]}")

    def dependents(self, queue: str, job_id: str) -> list[tuple[str, str]]:
        _, rq_keys = self.keys(queue)
        members = self.redis.smembers(rq_keys.dependents(job_id))
        refs = []
        for member in members:
            child_queue, _, child_id = decode_text(member).rpartition("/")
            refs.append((child_queue, child_id))
        return sorted(refs)

    def statuses(self, refs: Sequence[tuple[str, str]]) -> list[str | None]:
        """Return the status of each (queue, id), None for a job whose record is gone."""
        pipe = self.redis.pipeline(transaction=False)
        for queue, job_id in refs:
            pipe.hget(self.keys(queue)[1].record(job_id), "status")
        return [None if status is None else decode_text(status) for status in pipe.execute()]

    def release(self, queue: str, job_id: str, *, at_front: bool) -> bool:
        """Move a deferred job to its ready list; False when it was not deferred."""
        keys, rq_keys = self.keys(queue)
        moved = self._script["rq_release"](
            self.redis,
            [rq_keys.deferred, keys.ready, keys.job(job_id), rq_keys.record(job_id)],
            [job_id, "1" if at_front else "0"],
        )
        return bool(moved)

    # Running

    def start(self, queue: str, job_id: str, worker_name: str) -> tuple[str, dict[str, bytes]]:
        """Mark a claimed job started; return "started" and its record, or "canceled" or
        "not_found" and {}."""
        keys, rq_keys = self.keys(queue)
        reply = self._script["rq_start"](
            self.redis, [rq_keys.record(job_id), keys.job(job_id)], [worker_name]
        )
        flat = reply[1] if len(reply) > 1 else []
        fields = {decode_text(flat[i]): flat[i + 1] for i in range(0, len(flat), 2)}
        return decode_text(reply[0]), fields

    def finish(
        self,
        queue: str,
        process_id: str,
        job_id: str,
        *,
        return_value: bytes,
        result_ttl_ms: int,
        worker_name: str,
    ) -> int:
        """Record a success: 2 when the job has dependents, 1 without, 0 when this process no
        longer owned the job."""
        keys, rq_keys = self.keys(queue)
        owned = self._script["rq_finish"](
            self.redis,
            [
                keys.processing(process_id),
                keys.job(job_id),
                keys.stats,
                rq_keys.record(job_id),
                rq_keys.results(job_id),
                rq_keys.finished,
                rq_keys.dependents(job_id),
            ],
            [job_id, return_value, result_ttl_ms, worker_name],
        )
        return int(owned)

    def fail(
        self,
        queue: str,
        process_id: str,
        job_id: str,
        failure: FailureRecord,
        *,
        dead_max_jobs: int,
        dead_max_age_ms: int,
    ) -> int:
        """Record a failed attempt: 2 when the job ended with dependents, 1 otherwise, 0 when
        this process no longer owned the job."""
        keys, rq_keys = self.keys(queue)
        owned = self._script["rq_fail"](
            self.redis,
            [
                keys.processing(process_id),
                keys.job(job_id),
                keys.stats,
                keys.ready,
                keys.retry,
                keys.dead,
                rq_keys.record(job_id),
                rq_keys.results(job_id),
                rq_keys.dependents(job_id),
            ],
            [
                job_id,
                failure.mode,
                failure.delay_ms,
                failure.error_json,
                failure.traceback,
                failure.failure_ttl_ms,
                failure.retries_left,
                "1" if failure.at_front else "0",
                failure.worker_name,
                keys.job_prefix,
                dead_max_jobs,
                dead_max_age_ms,
                failure.final_status,
            ],
        )
        return int(owned)

    # Control

    def cancel(self, queue: str, job_id: str) -> str:
        """Cancel a job; return "canceled", "already_canceled" or "not_found"."""
        keys, rq_keys = self.keys(queue)
        outcome = self._script["rq_cancel"](
            self.redis,
            [
                keys.ready,
                keys.scheduled,
                keys.retry,
                rq_keys.deferred,
                keys.dead,
                keys.job(job_id),
                rq_keys.record(job_id),
                rq_keys.canceled,
            ],
            [job_id],
        )
        return decode_text(outcome)

    def requeue(self, queue: str, job_id: str, *, at_front: bool) -> bool:
        """Move a job from the failed-job registry back to its queue; False if it was not there."""
        keys, rq_keys = self.keys(queue)
        moved = self._script["rq_requeue"](
            self.redis,
            [keys.dead, keys.ready, keys.job(job_id), rq_keys.record(job_id)],
            [job_id, "1" if at_front else "0"],
        )
        return bool(moved)

    def delete(self, queue: str, job_id: str) -> bool:
        """Delete a job everywhere in its queue; False when it had no record."""
        keys, rq_keys = self.keys(queue)
        existed = self._script["rq_delete"](
            self.redis,
            [
                keys.ready,
                keys.scheduled,
                keys.retry,
                keys.dead,
                rq_keys.deferred,
                rq_keys.canceled,
                rq_keys.finished,
                keys.job(job_id),
                rq_keys.record(job_id),
                rq_keys.results(job_id),
                rq_keys.dependents(job_id),
            ],
            [job_id],
        )
        return bool(existed)

    def empty(self, queue: str) -> int:
        """Delete every job waiting in the ready list of `queue`; return how many."""
        keys, rq_keys = self.keys(queue)
        return int(
            self._script["rq_empty"](
                self.redis,
                [keys.ready],
                [keys.job_prefix, rq_keys.record_prefix, rq_keys.results_prefix],
            )
        )

    def save_meta(self, queue: str, job_id: str, meta_json: str) -> bool:
        _, rq_keys = self.keys(queue)
        return bool(self._script["rq_save_meta"](self.redis, [rq_keys.record(job_id)], [meta_json]))

    # Reading

    def record(self, queue: str, job_id: str) -> dict[str, bytes]:
        """Return the job's RQ record, {} when it is gone.

        The scheduler moves due jobs to the ready list without touching records. So a
        "scheduled" status is read as "queued" once the id has left the scheduled and retry
        sets, and a record without `enqueued_at` gets the time the id entered the ready list.
        """
        keys, rq_keys = self.keys(queue)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(rq_keys.record(job_id))
        pipe.zscore(keys.scheduled, job_id)
        pipe.zscore(keys.retry, job_id)
        pipe.hget(keys.job(job_id), "ready_at")
        raw, scheduled, retry, ready_at = pipe.execute()
        fields = {decode_text(name): value for name, value in raw.items()}
        if fields.get("status") == b"scheduled" and scheduled is None and retry is None:
            fields["status"] = b"queued"
            if "enqueued_at" not in fields and ready_at:
                fields["enqueued_at"] = ready_at
        return fields

    def find_queue(self, job_id: str) -> str | None:
        """Return the queue whose RQ record `job_id` is, looking through every known queue."""
        queues = self.storage.known_queues()
        pipe = self.redis.pipeline(transaction=False)
        for queue in queues:
            pipe.exists(self.keys(queue)[1].record(job_id))
        for queue, found in zip(queues, pipe.execute(), strict=True):
            if found:
                return queue
        return None

    def results(self, queue: str, job_id: str, count: int) -> list[RQResult]:
        """Return up to `count` results of the job, newest first."""
        _, rq_keys = self.keys(queue)
        entries: Any = self.redis.xrevrange(rq_keys.results(job_id), count=count)
        return [_parse_result(entry_id, fields) for entry_id, fields in entries]

    def wait_result(self, queue: str, job_id: str, after: str, timeout_s: float) -> RQResult | None:
        """Block up to `timeout_s` for a result newer than stream id `after`."""
        _, rq_keys = self.keys(queue)
        reply: Any = self.redis.xread(
            {rq_keys.results(job_id): after}, count=1, block=max(1, round(timeout_s * 1000))
        )
        if not reply:
            return None
        _, entries = reply[0]
        entry_id, fields = entries[0]
        return _parse_result(entry_id, fields)

    def ready_ids(self, queue: str, offset: int = 0, length: int = -1) -> list[str]:
        """Return ready ids in the order they will run (the tail of the list first)."""
        ids = [
            decode_text(job_id)
            for job_id in self.redis.lrange(self.storage.keys(queue).ready, 0, -1)
        ]
        ids.reverse()
        end = None if length < 0 else offset + length
        return ids[offset:end]

    def ready_count(self, queue: str) -> int:
        return int(self.redis.llen(self.storage.keys(queue).ready))

    def registry_ids(self, queue: str, registry: str) -> list[str]:
        """Return the ids of a registry, oldest first, dropping expired finished entries.

        `registry` is finished, deferred, canceled, failed, scheduled or started.
        """
        keys, rq_keys = self.keys(queue)
        if registry == "started":
            return self._started_ids(keys)
        if registry == "scheduled":
            pipe = self.redis.pipeline(transaction=False)
            pipe.zrange(keys.scheduled, 0, -1, withscores=True)
            pipe.zrange(keys.retry, 0, -1, withscores=True)
            merged = sorted(
                [
                    (score, decode_text(job_id))
                    for entries in pipe.execute()
                    for job_id, score in entries
                ]
            )
            return [job_id for _, job_id in merged]

        key = {
            "finished": rq_keys.finished,
            "deferred": rq_keys.deferred,
            "canceled": rq_keys.canceled,
            "failed": keys.dead,
        }[registry]
        if registry == "finished":
            self.redis.zremrangebyscore(key, "-inf", f"({self.storage.server_time_ms()}")
        return [decode_text(job_id) for job_id in self.redis.zrange(key, 0, -1)]

    def registry_score(self, queue: str, registry: str, job_id: str) -> float | None:
        keys, rq_keys = self.keys(queue)
        if registry == "scheduled":
            pipe = self.redis.pipeline(transaction=False)
            pipe.zscore(keys.scheduled, job_id)
            pipe.zscore(keys.retry, job_id)
            found = [score for score in pipe.execute() if score is not None]
            return float(found[0]) if found else None
        key = {"finished": rq_keys.finished, "failed": keys.dead}.get(registry)
        if key is None:
            return None
        score = self.redis.zscore(key, job_id)
        return None if score is None else float(score)

    def _started_ids(self, keys: QueueKeys) -> list[str]:
        # Jobs held by processes whose lease is valid; those of expired leases wait for reclaim.
        now = self.storage.server_time_ms()
        holders = [
            decode_text(process_id)
            for process_id in self.redis.zrangebyscore(keys.leases, now, "+inf")
        ]
        pipe = self.redis.pipeline(transaction=False)
        for process_id in holders:
            pipe.lrange(keys.processing(process_id), 0, -1)
        return [decode_text(job_id) for ids in pipe.execute() for job_id in ids]

    def remove_from_registry(self, queue: str, registry: str, job_id: str) -> bool:
        """Remove `job_id` from a finished, deferred, canceled or failed registry, keeping its
        record; return whether it was there."""
        keys, rq_keys = self.keys(queue)
        if registry == "failed":
            removed = self._script["rq_remove_failed"](
                self.redis, [keys.dead, keys.job(job_id)], [job_id]
            )
            return bool(removed)
        key = {
            "finished": rq_keys.finished,
            "deferred": rq_keys.deferred,
            "canceled": rq_keys.canceled,
        }.get(registry)
        if key is None:
            return False
        return bool(self.redis.zrem(key, job_id))


def _parse_result(entry_id: Any, fields: dict[bytes, bytes]) -> RQResult:
    exc = fields.get(b"exc_string")
    return RQResult(
        type=int(fields.get(b"type", b"0")),
        return_value=fields.get(b"return_value"),
        exc_string=None if exc is None else exc.decode("utf-8", "replace"),
        created_at_ms=int(fields.get(b"created_at", b"0")),
        worker_name=decode_text(fields.get(b"worker_name", b"")),
        stream_id=decode_text(entry_id),
    )
