"""`Storage`: the only code that talks to Redis. It builds keys and calls scripts, no threads."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import redis
from redis.exceptions import NoScriptError
from redis.sentinel import SentinelConnectionPool

from oxanus_sync.queue import WHOLE_FAMILY, Throttle, member_name, split_member_name
from oxanus_sync.storage.keys import GlobalKeys, QueueKeys
from oxanus_sync.storage.parsing import (
    CLAIM_FIELDS,
    as_bytes,
    decode_text,
    job_queue_name,
    member_key,
    number_field,
    parse_claimed,
    parse_counts,
    parse_process,
)
from oxanus_sync.storage.records import (
    Claim,
    ClaimedJob,
    DeadJob,
    NewJob,
    ProcessRecord,
    QueueCounts,
)
from oxanus_sync.storage.scripts import (
    KeyOrArg,
    Script,
    execute_pipeline,
    load_scripts,
    run_scripts,
)
from oxanus_sync.storage.wire import exchange

# Arguments of ack.lua shared by every job of one call. Each job then adds its id, claim count
# and unique field. In the call of one job, the claim count is at ACK_CLAIM_ARG.
ACK_SHARED_ARGS = 4
ACK_CLAIM_ARG = ACK_SHARED_ARGS + 1

# Ack keys kept per queue, process and throttle. A Runner needs one entry per queue or family.
ACK_HEADS_KEPT = 1024

# Jobs per enqueue script call; bounded because Lua's unpack() has a stack limit near 8,000.
ENQUEUE_CHUNK = 1000

# Active members whose ready jobs the stats of a whole family count, and backlogs it names.
FAMILY_STATS_SCAN = 10_000
FAMILY_STATS_BACKLOGS = 5
_SCRIPTS = load_scripts()
logger = logging.getLogger(__name__)


class FinishCall(NamedTuple):
    """A prepared ack or fail script call of a job of the queue with keys `queue_keys`.

    A named tuple, because the Runner builds one per job.
    """

    queue_keys: QueueKeys
    script: Script
    keys: list[KeyOrArg]
    args: list[KeyOrArg]


class PartialEnqueue(Exception):  # noqa: N818 - internal signal, translated by the Client
    """Redis rejected an enqueue chunk; the jobs before index `created` were stored."""

    def __init__(self, *, created: int, error: Exception) -> None:
        super().__init__(str(error))
        self.created = created
        self.error = error


class Storage:
    """Redis operations of one namespace, each one round trip.

    A method that takes a queue name also takes the name of a queue family, `prefix[*]`, or of
    one of its members, `prefix[key]`: both address the family's keys (see keys.py). Only
    enqueue and stats treat a member apart from its family.
    """

    def __init__(self, client: redis.Redis, namespace: str) -> None:
        self.redis = client
        self.namespace = namespace
        self.global_keys = GlobalKeys.build(namespace)
        self._queue_keys: dict[str, QueueKeys] = {}
        self._ack_heads: dict[
            tuple[str, str, Throttle | None],
            tuple[QueueKeys, list[KeyOrArg], tuple[KeyOrArg, ...]],
        ] = {}
        self._script = _SCRIPTS

    def keys(self, queue: str) -> QueueKeys:
        found = self._queue_keys.get(queue)
        if found is not None:
            return found

        member = split_member_name(queue)
        if member is None:
            found = self._queue_keys[queue] = QueueKeys.build(self.namespace, queue)
            return found

        # Cached per family, not per member: a family may have millions of members.
        family_name = member_name(member[0], WHOLE_FAMILY)
        found = self._queue_keys.get(family_name)
        if found is None:
            found = QueueKeys.build(self.namespace, family_name, family=True)
            self._queue_keys[family_name] = found
        return found

    # Enqueue

    def enqueue(
        self, queue: str, jobs: Sequence[NewJob], when: tuple[str, int]
    ) -> list[tuple[int, str]]:
        """Create `jobs` in `queue`; return a code and a job id per job.

        The codes: 1 created; 0 not created because a job with that id exists; 2 a unique job
        skipped because the returned job has its key; 3 the returned job, owner of the key
        and not started yet, took the new job's payload and due time.

        `when` is ("now", 0), ("in", delay_ms) or ("at", due_ms). All chunks go in one round
        trip.
        """
        chunks = _chunks(jobs)
        calls = [self._enqueue_call(queue, chunk, when) for chunk in chunks]
        return self._enqueue_outcomes(chunks, calls, run_scripts(self.redis, calls))

    def enqueue_and_wait(
        self,
        queue: str,
        jobs: Sequence[NewJob],
        when: tuple[str, int],
        *,
        replicas: int,
        timeout_ms: int,
    ) -> tuple[list[tuple[int, str]], int | Exception]:
        """Create jobs as `enqueue` does, then WAIT for `replicas` in the same pipeline.

        Returns the outcomes and the number of replicas that acknowledged the writes, or the
        error WAIT failed with. WAIT counts the writes made on its own connection, so the
        scripts are sent as EVAL: an EVALSHA answered NOSCRIPT would be sent again in a second
        pipeline, perhaps on another connection, where the WAIT would not cover it.
        """
        chunks = _chunks(jobs)
        calls = [self._enqueue_call(queue, chunk, when) for chunk in chunks]
        pipe = self.redis.pipeline(transaction=False)
        for script, script_keys, args in calls:
            pipe.eval(script.source, len(script_keys), *script_keys, *args)
        pipe.wait(replicas, timeout_ms)
        *results, acknowledged = pipe.execute(raise_on_error=False)
        return self._enqueue_outcomes(chunks, calls, results), acknowledged

    def _enqueue_call(
        self, queue: str, chunk: Sequence[NewJob], when: tuple[str, int]
    ) -> tuple[Script, list[KeyOrArg], list[KeyOrArg]]:
        # The script, keys and arguments of one call for at most ENQUEUE_CHUNK jobs.
        keys = self.keys(queue)
        member = member_key(queue) if keys.family else None
        if keys.family and member is None:
            raise ValueError(f"enqueue to a member of queue family {queue!r}, not to all of it")

        any_unique = any(job.unique for job in chunk)
        if when[0] == "now" and not keys.family and not any_unique:
            args: list[KeyOrArg] = [keys.job_prefix]
            for job in chunk:
                args += (job.id, job.payload, job.signature)
            return self._script["enqueue_now"], [keys.ready], args

        script_keys: list[KeyOrArg] = [
            keys.ready,
            keys.scheduled,
            keys.retry,
            keys.unique,
            keys.active,
            keys.members,
        ]
        # Jobs that are not unique leave out their two unique values.
        args = [when[0], when[1], keys.job_prefix, member or ""]
        if any_unique:
            args.append(5)
            for job in chunk:
                args += (job.id, job.payload, job.signature, job.unique, job.on_conflict)
        else:
            args.append(3)
            for job in chunk:
                args += (job.id, job.payload, job.signature)
        return self._script["enqueue"], script_keys, args

    def _enqueue_outcomes(
        self,
        chunks: Sequence[Sequence[NewJob]],
        calls: Sequence[tuple[Script, list[KeyOrArg], list[KeyOrArg]]],
        replies: Sequence[Any],
    ) -> list[tuple[int, str]]:
        # A code and a job id per job; a failed chunk ends the stored prefix. enqueue_now.lua
        # replies with a code per job, enqueue.lua with a code and a job id per job.
        outcomes: list[tuple[int, str]] = []
        for chunk, (script, _, _), reply in zip(chunks, calls, replies, strict=True):
            if isinstance(reply, Exception):
                raise PartialEnqueue(created=len(outcomes), error=reply)
            if script is self._script["enqueue_now"]:
                outcomes += [(int(code), job.id) for code, job in zip(reply, chunk, strict=True)]
            else:
                outcomes += [
                    (int(reply[i]), decode_text(reply[i + 1])) for i in range(0, len(reply), 2)
                ]
        return outcomes

    def register_queues(self, queues: Iterable[str]) -> None:
        names = list(queues)
        if names:
            self.redis.sadd(self.global_keys.queues, *names)

    def known_queues(self) -> list[str]:
        return sorted(decode_text(name) for name in self.redis.smembers(self.global_keys.queues))

    # Claim and finish

    def claim(
        self, queue: str, process_id: str, count: int, throttle: Throttle | None = None
    ) -> Claim:
        """Claim up to `count` ready jobs, no more than `throttle` admits.

        A process whose lease expired claims nothing until its heartbeat renews the lease.
        """
        keys = self.keys(queue)
        lease_valid, raw, throttled_ms = self._script["claim"](
            self.redis,
            [
                keys.ready,
                keys.processing(process_id),
                keys.leases,
                keys.throttle,
                *_family_keys(keys),
            ],
            [count, keys.job_prefix, process_id, *_throttle_args(throttle)],
        )
        return Claim(bool(lease_valid), parse_claimed(keys, raw), int(throttled_ms))

    def wait_until_ready(self, connection: redis.Redis, queue: str, timeout_s: float) -> bool:
        """Wait up to `timeout_s` until `queue` has a ready job, without claiming it.

        BLMOVE from a list's tail back to its tail moves nothing; it only returns when the
        list has an element. A throttled queue waits this way on its ready list (a family on
        its active list), then claims through the throttle. Returns whether a job was ready.
        """
        keys = self.keys(queue)
        watched = keys.active if keys.family else keys.ready
        reply = connection.blmove(watched, watched, timeout_s, "RIGHT", "RIGHT")  # type: ignore[arg-type]
        return reply is not None

    def blocking_claim(
        self, connection: redis.Redis, queue: str, process_id: str, timeout_s: float
    ) -> ClaimedJob | None:
        """Wait up to `timeout_s` for one job with BLMOVE on `connection`, a dedicated client.

        A queue family's BLMOVE only waits for a member in its active list, moving nothing, and
        the job is then claimed with the claim script, which returns nothing when the lease
        expired or another process took the job first.
        """
        keys = self.keys(queue)
        if keys.family:
            member = connection.blmove(keys.active, keys.active, timeout_s, "RIGHT", "RIGHT")  # type: ignore[arg-type]
            if member is None:
                return None
            jobs = self.claim(queue, process_id, 1).jobs
            return jobs[0] if jobs else None

        # The job's fields are read by a script sent in the same write (see fetched.lua).
        processing = keys.processing(process_id)
        blmove: list[KeyOrArg] = ["BLMOVE", keys.ready, processing, "RIGHT", "RIGHT", timeout_s]
        read = self._script["fetched"].command([processing], [keys.job_prefix, *CLAIM_FIELDS])
        moved, fetched = exchange(connection, [blmove, read])
        if isinstance(moved, Exception):
            raise moved
        if moved is None:
            return None

        job_id = decode_text(moved)
        if isinstance(fetched, list) and fetched and decode_text(fetched[0]) == job_id:
            fields = fetched[1:]
        else:
            # NOSCRIPT, or the list changed under a reclaim: read the fields on their own.
            if isinstance(fetched, NoScriptError):
                connection.script_load(self._script["fetched"].source)
            fields = _command(connection, ["HMGET", keys.job_prefix + job_id, *CLAIM_FIELDS])
        if fields[0] is None and not connection.exists(keys.job_prefix + job_id):
            connection.lrem(processing, 1, job_id)
            return None
        return parse_claimed(keys, [moved, *fields])[0]

    def ack_call(
        self,
        queue: str,
        process_id: str,
        job_id: str,
        claim_next: int,
        throttle: Throttle | None = None,
        *,
        unique: bytes | str | None,
    ) -> FinishCall:
        """Build the call that finishes a succeeded job, for `finish` or `finish_many`.

        `unique` is the job's field in the unique hash, `ClaimedJob.unique`, which the script
        frees. The script also claims up to `claim_next` more jobs, through `throttle`, while
        the process's lease is valid.
        """
        head = self._ack_heads.get((queue, process_id, throttle))
        if head is None:
            head = self._ack_head(queue, process_id, throttle)
        keys, script_keys, shared_args = head
        return FinishCall(
            keys, self._script["ack"], script_keys, [*shared_args, job_id, claim_next, unique or ""]
        )

    def _ack_head(
        self, queue: str, process_id: str, throttle: Throttle | None
    ) -> tuple[QueueKeys, list[KeyOrArg], tuple[KeyOrArg, ...]]:
        # The keys and shared arguments of the acks of one queue and process, built once: the
        # Runner makes an ack call for every job.
        keys = self.keys(queue)
        script_keys: list[KeyOrArg] = [
            keys.processing(process_id),
            keys.stats,
            keys.ready,
            keys.leases,
            keys.unique,
            keys.throttle,
            *_family_keys(keys),
        ]
        shared_args = (keys.job_prefix, process_id, *_throttle_args(throttle))
        if len(self._ack_heads) >= ACK_HEADS_KEPT:
            self._ack_heads.clear()
        head = self._ack_heads[(queue, process_id, throttle)] = (keys, script_keys, shared_args)
        return head

    def fail_call(
        self,
        queue: str,
        process_id: str,
        job_id: str,
        *,
        retry_delay_ms: int | None,
        error: dict[str, Any],
        claim_next: int,
        dead_max_jobs: int,
        dead_max_age_ms: int,
        throttle: Throttle | None = None,
        timed_out: bool = False,
    ) -> FinishCall:
        """Build the call that records a failed attempt, for `finish` or `finish_many`.

        The job is retried after `retry_delay_ms`, or goes dead when it is None; more jobs are
        claimed next as for `ack_call`.
        """
        keys = self.keys(queue)
        mode = "dead" if retry_delay_ms is None else "retry"
        return FinishCall(
            keys,
            self._script["fail"],
            [
                keys.processing(process_id),
                keys.job(job_id),
                keys.stats,
                keys.ready,
                keys.retry,
                keys.dead,
                keys.leases,
                keys.unique,
                keys.throttle,
                *_family_keys(keys),
            ],
            [
                job_id,
                mode,
                max(retry_delay_ms or 0, 0),
                json.dumps(error),
                claim_next,
                keys.job_prefix,
                dead_max_jobs,
                dead_max_age_ms,
                process_id,
                *_throttle_args(throttle),
                int(timed_out),
            ],
        )

    def finish(self, call: FinishCall) -> tuple[bool, list[ClaimedJob]]:
        """Run one ack or fail call; return whether the process still owned the job, and the
        jobs claimed next."""
        (result,) = self.finish_many([call])
        if isinstance(result, Exception):
            raise result
        return result

    def finish_many(
        self, calls: Sequence[FinishCall]
    ) -> list[tuple[bool, list[ClaimedJob]] | Exception]:
        """Run ack and fail calls in one round trip; return each result or the error it raised.

        The acks of one queue and process go in one script call. The jobs it claims are shared
        out in order, each ack getting the count it requested while jobs last. A connection
        error fails the whole round trip and is raised, and some calls may have run.
        """
        ack = self._script["ack"]
        sent, senders = _merge_acks(calls, ack)
        replies = run_scripts(self.redis, sent)

        by_call: dict[int, tuple[bool, list[ClaimedJob]] | Exception] = {}
        for (script, _, _), indexes, reply in zip(sent, senders, replies, strict=True):
            keys = calls[indexes[0]].queue_keys
            if isinstance(reply, Exception):
                by_call.update((index, reply) for index in indexes)
            elif script is ack:
                claimed = parse_claimed(keys, reply[0])
                for index, owned in zip(indexes, reply[1], strict=True):
                    share = int(calls[index].args[ACK_CLAIM_ARG]) if owned else 0
                    by_call[index] = (bool(owned), claimed[:share])
                    del claimed[:share]
            else:
                by_call[indexes[0]] = (bool(reply[0]), parse_claimed(keys, reply[1]))
        return [by_call[index] for index in range(len(calls))]

    def save_state(self, queue: str, process_id: str, job_id: str, state: bytes) -> bool:
        """Store a running job's progress state; False when the process no longer owns it."""
        keys = self.keys(queue)
        saved = self._script["save_state"](
            self.redis, [keys.processing(process_id), keys.job(job_id)], [job_id, state]
        )
        return bool(saved)

    def requeue(self, queue: str, process_id: str, job_id: str) -> bool:
        keys = self.keys(queue)
        moved = self._script["requeue"](
            self.redis,
            [keys.processing(process_id), keys.ready, keys.job(job_id), *_family_keys(keys)],
            [job_id],
        )
        return bool(moved)

    # Scheduling, leases and reclaim

    def promote_due(self, queues: Sequence[str], limit: int) -> list[tuple[int, int, int]]:
        """Move due scheduled and retry jobs to ready.

        Returns, per queue, (jobs moved, earliest due time left in ms or -1, server time in
        microseconds).
        """
        script = self._script["promote"]
        pipe = self.redis.pipeline(transaction=False)
        for queue in queues:
            keys = self.keys(queue)
            script.queue_in(
                pipe,
                [keys.ready, keys.scheduled, keys.retry, *_family_keys(keys)],
                [keys.job_prefix, limit],
            )
        results = execute_pipeline(self.redis, pipe, [script])
        return [(int(moved), int(next_due), int(now_us)) for moved, next_due, now_us in results]

    def heartbeat(
        self, process_id: str, queues: Sequence[str], lease_ms: int, info: dict[str, str | int]
    ) -> list[bool]:
        """Renew this process's lease on each queue and its registry entry, in one round trip.

        Returns, per queue, whether the lease existed before this beat.
        """
        script = self._script["lease"]
        process_key = self.global_keys.process(process_id)
        pipe = self.redis.pipeline(transaction=False)
        for queue in queues:
            script.queue_in(pipe, [self.keys(queue).leases], [process_id, lease_ms])
        fields: dict[Any, Any] = dict(info)
        pipe.hset(process_key, mapping=fields)
        pipe.pexpire(process_key, lease_ms * 3)
        pipe.zadd(self.global_keys.processes, {process_id: int(info["started_at"])}, nx=True)

        results = execute_pipeline(self.redis, pipe, [script])
        return [bool(existed) for existed, _ in results[: len(queues)]]

    def release(self, process_id: str, queues: Sequence[str]) -> list[str]:
        """Drop this process's leases and registry entry; return queues whose lists held jobs."""
        script = self._script["release"]
        pipe = self.redis.pipeline(transaction=False)
        for queue in queues:
            keys = self.keys(queue)
            script.queue_in(pipe, [keys.leases, keys.processing(process_id)], [process_id])
        pipe.delete(self.global_keys.process(process_id))
        pipe.zrem(self.global_keys.processes, process_id)

        results = execute_pipeline(self.redis, pipe, [script])
        return [queue for queue, dropped in zip(queues, results, strict=False) if not dropped]

    def reclaim(
        self, queues: Sequence[str], forget_after_ms: int, limit: int
    ) -> dict[str, list[str]]:
        """Move jobs of processes whose lease expired back to the ready lists; return moved ids."""
        script = self._script["reclaim"]
        pipe = self.redis.pipeline(transaction=False)
        for queue in queues:
            keys = self.keys(queue)
            script.queue_in(
                pipe,
                [keys.ready, keys.leases, *_family_keys(keys)],
                [keys.processing_prefix, keys.job_prefix, forget_after_ms, limit],
            )
        results = execute_pipeline(self.redis, pipe, [script])
        return {
            queue: [job_id.decode() for job_id in moved]
            for queue, moved in zip(queues, results, strict=True)
            if moved
        }

    def processing_ids(self, process_id: str, queues: Sequence[str]) -> dict[str, list[str]]:
        """Return the ids in this process's processing list of each queue."""
        pipe = self.redis.pipeline(transaction=False)
        for queue in queues:
            pipe.lrange(self.keys(queue).processing(process_id), 0, -1)
        return {
            queue: [decode_text(job_id) for job_id in ids]
            for queue, ids in zip(queues, pipe.execute(), strict=True)
        }

    # Connections for blocking commands

    def blocking_client(self, name: str, timeout_s: float) -> redis.Redis:
        """Return a client with one connection of its own, named `name` in CLIENT LIST.

        Its socket timeout exceeds `timeout_s`, so that a BLMOVE waiting that long is not cut
        off by the client, yet a connection that died silently is noticed soon after.
        """
        return self._dedicated_client(name, timeout_s + 5.0)

    def with_timeout(self, name: str, socket_timeout_s: float) -> Storage:
        """Return a Storage of the same namespace on its own connection, with its own timeout.

        The heartbeat uses one so that a silently dead connection fails within its interval
        instead of the pool's longer command timeout.
        """
        return Storage(self._dedicated_client(name, socket_timeout_s), self.namespace)

    def _dedicated_client(self, name: str, socket_timeout_s: float) -> redis.Redis:
        pool = self.redis.connection_pool
        options = dict(pool.connection_kwargs)
        options["socket_timeout"] = socket_timeout_s
        options["client_name"] = name
        try:
            return _single_connection_client(pool, options)
        except redis.exceptions.NoPermissionError:
            # The ACL user may not name its connections; a Runner then cannot wake its
            # fetchers at shutdown and waits for BLMOVE to time out instead.
            logger.warning(
                "the Redis user may not run CLIENT SETNAME; connection %s stays unnamed, so "
                "stopping waits for blocked fetchers to time out",
                name,
            )
            del options["client_name"]
            return _single_connection_client(pool, options)

    def primary_address(self) -> tuple[str, int] | None:
        """Return the address of the primary that Sentinel reports, or None without Sentinel."""
        pool = self.redis.connection_pool
        if not isinstance(pool, SentinelConnectionPool):
            return None
        host, port = pool.get_master_address()  # type: ignore[no-untyped-call]
        return str(host), int(port)

    def reset_connections(self) -> None:
        """Close every connection of this Storage, in use or not; the next command reconnects.

        After a failover, connections opened before it may still reach the old primary, which
        accepts writes until Sentinel demotes it and then drops them.
        """
        self.redis.connection_pool.disconnect(inuse_connections=True)

    def unblock(self, name_prefix: str) -> int:
        """Wake every connection whose name starts with `name_prefix` from a blocking command."""
        woken = 0
        for entry in self.redis.client_list():
            if str(entry.get("name", "")).startswith(name_prefix):
                woken += int(self.redis.client_unblock(int(entry["id"])))
        return woken

    # Cancellation

    def cancel(self, queue: str, job_id: str) -> str:
        """Cancel a job and return what happened.

        "cancelled": it was waiting and is deleted. "requested": it is running and its Runner
        will pass the request on. "dead": it is in the dead set. "not_found": no such job.
        """
        keys = self.keys(queue)
        outcome = self._script["cancel"](
            self.redis,
            [
                keys.ready,
                keys.scheduled,
                keys.retry,
                keys.job(job_id),
                keys.stats,
                keys.dead,
                keys.unique,
                *_family_keys(keys),
            ],
            [job_id],
        )
        return decode_text(outcome)

    def cancel_requested(self, jobs: Sequence[tuple[str, str]]) -> list[bool]:
        """Return, per (queue, job id), whether cancellation of the running job was requested."""
        pipe = self.redis.pipeline(transaction=False)
        for queue, job_id in jobs:
            pipe.hexists(self.keys(queue).job(job_id), "cancel")
        return [bool(flag) for flag in pipe.execute()]

    # Periodic jobs

    def last_cron_tick(self, queue: str, name: str) -> int | None:
        """Return the last tick in ms that fired or was skipped for periodic job `name`."""
        value = self.redis.hget(self.keys(queue).cron, name)
        return int(value) if value is not None else None

    def fire_cron(
        self, queue: str, name: str, tick_ms: int, job: tuple[str, bytes, bytes], *, run: bool
    ) -> int:
        """Enqueue a periodic job's tick once (or only record it when `run` is false).

        Returns 1 when it enqueued, 2 when it only recorded the tick, 0 when another Runner
        had already handled this tick.
        """
        keys = self.keys(queue)
        job_id, payload, signature = job
        return int(
            self._script["cron_fire"](
                self.redis,
                [keys.cron, keys.ready, keys.job(job_id)],
                [name, tick_ms, job_id, payload, signature, "fire" if run else "mark"],
            )
        )

    def publish_periodic(self, entries: dict[str, str]) -> None:
        """Record periodic jobs and their next run for operators (`oxanus-sync info`)."""
        if entries:
            mapping: dict[Any, Any] = dict(entries)
            self.redis.hset(self.global_keys.periodic, mapping=mapping)

    def periodic(self) -> dict[str, dict[str, Any]]:
        raw = self.redis.hgetall(self.global_keys.periodic)
        return {decode_text(name): json.loads(value) for name, value in raw.items()}

    # Inspection

    def queue_counts(self, queues: Sequence[str]) -> list[QueueCounts]:
        script = self._script["stats"]
        pipe = self.redis.pipeline(transaction=False)
        for queue in queues:
            keys = self.keys(queue)
            script_keys = [
                keys.ready,
                keys.scheduled,
                keys.retry,
                keys.dead,
                keys.stats,
                keys.leases,
                keys.unique,
                keys.throttle,
                keys.throttle_settings,
            ]
            args: list[str | int] = [keys.job_prefix, keys.processing_prefix]
            if keys.family:
                script_keys += [keys.active, keys.members]
                args += [member_key(queue) or "", FAMILY_STATS_SCAN, FAMILY_STATS_BACKLOGS]
            script.queue_in(pipe, script_keys, args)
        results = execute_pipeline(self.redis, pipe, [script])
        return [parse_counts(queue, result) for queue, result in zip(queues, results, strict=True)]

    def retire_members(
        self, families: Sequence[tuple[str, int]], limit: int
    ) -> dict[str, list[str]]:
        """Drop idle members from the registry of each (family name, idle time in ms).

        Returns the members removed per family, looking at no more than `limit` per family.
        """
        script = self._script["retire"]
        pipe = self.redis.pipeline(transaction=False)
        for family, idle_ms in families:
            keys = self.keys(family)
            script.queue_in(pipe, [keys.members, keys.ready], [idle_ms, limit])
        results = execute_pipeline(self.redis, pipe, [script])
        return {
            family: [decode_text(member) for member in removed]
            for (family, _), removed in zip(families, results, strict=True)
            if removed
        }

    def pending(self, queues: Sequence[str], process_id: str, *, include_scheduled: bool) -> int:
        """Count the jobs a drain still has to run.

        That is ready jobs, jobs claimed by `process_id`, and due scheduled and retry jobs (all
        of them with `include_scheduled`).
        """
        until = "+inf" if include_scheduled else _server_time_ms(self.redis)
        pipe = self.redis.pipeline(transaction=False)
        for queue in queues:
            keys = self.keys(queue)
            # A family's active list is empty exactly when none of its members has a ready job.
            pipe.llen(keys.active if keys.family else keys.ready)
            pipe.llen(keys.processing(process_id))
            pipe.zcount(keys.scheduled, "-inf", until)
            pipe.zcount(keys.retry, "-inf", until)
        return sum(int(count) for count in pipe.execute())

    def processes(self) -> list[ProcessRecord]:
        """Return live Runner processes, dropping registry entries whose heartbeat expired."""
        ids = [
            decode_text(member) for member in self.redis.zrange(self.global_keys.processes, 0, -1)
        ]
        pipe = self.redis.pipeline(transaction=False)
        for process_id in ids:
            pipe.hgetall(self.global_keys.process(process_id))

        records, gone = [], []
        for process_id, fields in zip(ids, pipe.execute(), strict=True):
            if fields:
                records.append(parse_process(process_id, fields))
            else:
                gone.append(process_id)
        if gone:
            # A read-only replica or user cannot drop them; the next writer will.
            with contextlib.suppress(redis.ResponseError):
                self.redis.zrem(self.global_keys.processes, *gone)
        return records

    def job_fields(self, queue: str, job_id: str) -> dict[str, bytes]:
        fields = self.redis.hgetall(self.keys(queue).job(job_id))
        return {decode_text(name): as_bytes(value) for name, value in fields.items()}

    # Dead set

    def dead_jobs(self, queue: str, offset: int, limit: int) -> list[DeadJob]:
        """Return dead jobs, newest first."""
        if limit <= 0:
            return []
        keys = self.keys(queue)
        ids = [
            decode_text(job_id)
            for job_id in self.redis.zrevrange(keys.dead, offset, offset + limit - 1)
        ]
        pipe = self.redis.pipeline(transaction=False)
        for job_id in ids:
            pipe.hmget(keys.job(job_id), ["payload", "attempt", "dead_at", "error", "member"])

        dead = []
        replies = zip(ids, pipe.execute(), strict=True)
        for job_id, (payload, attempt, dead_at, error, member) in replies:
            if payload is None and dead_at is None:
                continue  # The hash is gone: the job was deleted after ZREVRANGE.
            ignored: list[str] = []
            dead.append(
                DeadJob(
                    queue=job_queue_name(keys, member),
                    id=job_id,
                    payload=payload or b"",
                    attempt=number_field("attempt", attempt, ignored) or 0,
                    dead_at_ms=number_field("dead_at", dead_at, ignored),
                    error=json.loads(error) if error else None,
                )
            )
        return dead

    def dead_retry(self, queue: str, job_ids: Sequence[str]) -> int:
        keys = self.keys(queue)
        script = self._script["dead_retry"]
        pipe = self.redis.pipeline(transaction=False)
        for job_id in job_ids:
            script.queue_in(
                pipe,
                [keys.dead, keys.ready, keys.job(job_id), keys.unique, *_family_keys(keys)],
                [job_id, keys.job_prefix],
            )
        return sum(execute_pipeline(self.redis, pipe, [script]))

    def dead_delete(self, queue: str, job_ids: Sequence[str] | None) -> int:
        """Delete the given dead jobs, or every dead job of `queue` when `job_ids` is None."""
        keys = self.keys(queue)
        script = self._script["dead_delete"]
        if job_ids is not None:
            return (
                int(script(self.redis, [keys.dead], [keys.job_prefix, *job_ids])) if job_ids else 0
            )

        total = 0
        while deleted := int(script(self.redis, [keys.dead], [keys.job_prefix])):
            total += deleted
        return total

    def server_time_ms(self) -> int:
        return _server_time_ms(self.redis)


def _single_connection_client(pool: redis.ConnectionPool, options: dict[str, Any]) -> redis.Redis:
    """Open a connection with `options`, to the server that `pool` connects to, in a pool of
    its own that the returned client closes. One thread uses the client, so the pool keeps one
    connection.

    A Sentinel-managed pool gets a Sentinel-managed copy, which queries the Sentinels for
    the current primary at each connect, so the connection follows a failover. The client
    takes its connection from the pool for each command rather than keeping one
    (`single_connection_client`): redis-py 8.2 reconnects a kept connection to the address it
    had, so after a Sentinel failover it kept reaching the demoted primary.
    """
    own_pool: redis.ConnectionPool
    if isinstance(pool, SentinelConnectionPool):
        # "connection_pool" is the original pool's link to the Sentinels; the copy makes its own.
        own_options = {key: value for key, value in options.items() if key != "connection_pool"}
        own_pool = SentinelConnectionPool(  # type: ignore[no-untyped-call]
            pool.service_name,
            pool.sentinel_manager,
            connection_class=pool.connection_class,
            is_master=pool.is_master,
            check_connection=pool.check_connection,
            **own_options,
        )
    else:
        own_pool = redis.ConnectionPool(connection_class=pool.connection_class, **options)
    client = redis.Redis(connection_pool=own_pool)
    client.auto_close_connection_pool = True
    # Connect now, so that a missing permission for CLIENT SETNAME shows here.
    client.ping()
    return client


def _merge_acks(
    calls: Sequence[FinishCall], ack: Script
) -> tuple[list[tuple[Script, list[KeyOrArg], list[KeyOrArg]]], list[list[int]]]:
    # Return the script calls that carry `calls`, and for each the indexes of the calls in it.
    # Acks of one queue, process and throttle become one call with several job ids, and every
    # other call is sent as it is. Storage.ack_call gives such acks one shared key list, so
    # the list's identity names the group. The calls keep their lists alive meanwhile.
    if len(calls) == 1:
        return [(calls[0].script, calls[0].keys, calls[0].args)], [[0]]

    sent: list[tuple[Script, list[KeyOrArg], list[KeyOrArg]]] = []
    senders: list[list[int]] = []
    ack_slots: dict[int, int] = {}
    for index, call in enumerate(calls):
        if call.script is not ack:
            sent.append((call.script, call.keys, call.args))
            senders.append([index])
            continue

        group = id(call.keys)
        slot = ack_slots.get(group)
        if slot is None:
            ack_slots[group] = len(sent)
            sent.append((ack, call.keys, list(call.args)))
            senders.append([index])
        else:
            sent[slot][2].extend(call.args[ACK_SHARED_ARGS:])
            senders[slot].append(index)
    return sent, senders


def _chunks(jobs: Sequence[NewJob]) -> list[Sequence[NewJob]]:
    # The jobs of one enqueue script call each.
    if 0 < len(jobs) <= ENQUEUE_CHUNK:
        return [jobs]
    return [jobs[start : start + ENQUEUE_CHUNK] for start in range(0, len(jobs), ENQUEUE_CHUNK)]


def _throttle_args(throttle: Throttle | None) -> tuple[int, int]:
    # The scripts read a limit of 0 as "not throttled".
    return (0, 0) if throttle is None else (throttle.limit, throttle.window_ms)


def _server_time_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def _command(connection: redis.Redis, command: list[KeyOrArg]) -> Any:
    # One command on the per-job path (see wire.py); its reply, or the error Redis gave.
    (reply,) = exchange(connection, [command])
    if isinstance(reply, Exception):
        raise reply
    return reply


def _family_keys(keys: QueueKeys) -> list[str]:
    # The optional last key of the scripts that push to or claim from a ready list.
    return [keys.active] if keys.family else []
