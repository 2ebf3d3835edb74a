"""The Redis key schema: every key oxanus_sync reads or writes is built here.

`P` is the namespace (default "oxanus") and `Q` a queue name. Every key of a queue carries the
hash tag `{Q}`, so all of them live in one Redis Cluster slot and one Lua script can change any
of them atomically. Times are milliseconds since the epoch on the Redis server's clock.

Per queue:

| key                         | type | contents                                                   |
|-----------------------------|------|------------------------------------------------------------|
| `P:{Q}:ready`               | LIST | ids of jobs ready to run; pushed at the head, taken from  |
|                             |      | the tail, so the tail is the oldest                        |
| `P:{Q}:processing:<proc>`   | LIST | ids that Runner process `<proc>` has claimed and not yet  |
|                             |      | finished; claim scripts push at the head, an idle         |
|                             |      | fetcher's BLMOVE at the tail (see fetched.lua)             |
| `P:{Q}:leases`              | ZSET | process id -> time its lease on this queue expires         |
| `P:{Q}:scheduled`           | ZSET | job id -> due time, for jobs enqueued with a delay         |
| `P:{Q}:retry`               | ZSET | job id -> due time, for failed jobs waiting to retry       |
| `P:{Q}:dead`                | ZSET | job id -> time it went dead                                |
| `P:{Q}:stats`               | HASH | counters: succeeded, failed, retried, dead, timed_out,     |
|                             |      | cancelled; processed is read as succeeded + failed         |
| `P:{Q}:cron`                | HASH | periodic job name -> last tick that fired or was skipped   |
| `P:{Q}:unique`              | HASH | unique field -> id of the job holding it (see below)       |
| `P:{Q}:throttle`            | ZSET | "<time>:<job id>" -> time, one per job start admitted in   |
|                             |      | the throttle window; it expires a second after the window |
| `P:{Q}:throttle:settings`   | HASH | limit and window_ms of the last throttled claim, for the   |
|                             |      | stats; it expires an hour after that claim                 |
| `P:{Q}:job:<id>`            | HASH | one job, fields below                                      |

Fields of a job hash:
- `payload`: the JSON envelope, never rewritten;
- `sig`: the payload's HMAC signature, when the Client signs payloads;
- `enqueued_at`, `ready_at` (when it last entered the ready list), `due_at` (scheduled or
  retry time), `dead_at`;
- `attempt`: failed attempts so far; `reclaims`: times taken back from a stopped process;
- `error`: JSON of the last error (type, message, traceback, attempt);
- `state`: the progress a running job saved with `Context.save_state`, kept across attempts;
- `unique`: for a unique job, its field in `P:{Q}:unique`;
- `cancel`: set when cancellation of the running job was requested.

A unique field is the JSON array `[job type, unique key]`, so equal keys of two job types never
collide. The field points to the job while that job exists and is released when it succeeds,
goes dead or is cancelled. An enqueue that finds a field pointing to a job whose hash is gone
takes the field over, so no crash can block a key forever.

- `member`: for a job of a queue family, the key of its member (see below).

A job exists exactly while its hash exists; the lists and sets hold only ids. A job is in one
place at a time: the ready list, one processing list, the scheduled or retry set, or the dead
set. Scripts that find an id whose hash is gone drop the id.

Per queue family: a family with prefix `F` is stored as one queue named `F[*]`, a name that no
static queue can have, so its keys are `P:{F[*]}:...` and all members share one hash tag. The
keys above (leases, processing lists, scheduled, retry, dead, stats, job hashes) hold the jobs of
every member; its `ready` list stays empty, and ready jobs wait in per-member lists instead:

| key                         | type | contents                                                   |
|-----------------------------|------|------------------------------------------------------------|
| `P:{F[*]}:ready:<member>`   | LIST | ids of the member's ready jobs, head and tail as `ready`   |
| `P:{F[*]}:active`           | LIST | members with ready jobs, in round-robin order: claims take |
|                             |      | a member from the tail and push it back at the head while  |
|                             |      | it has more; a member is in it exactly once while its list |
|                             |      | is non-empty, and never otherwise                          |
| `P:{F[*]}:members`          | ZSET | member -> last enqueue time, or the last time the          |
|                             |      | retirement step found jobs ready for it; members idle for  |
|                             |      | the family's `idle_retire_s` with no ready job are removed |

Per queue, for jobs of the RQ-compatible layer `oxanus_sync.rq` only. Such a job is also an
ordinary job of the queue (a job hash, and its id in the ready list, a processing list, the
scheduled, retry or dead set), so it is claimed, leased, reclaimed and counted like any other.
The dead set is the layer's failed-job registry and the scheduled and retry sets its scheduled
registry. These keys add what RQ keeps beyond that:

| key                           | type   | contents                                             |
|-------------------------------|--------|------------------------------------------------------|
| `P:{Q}:rq:job:<id>`           | HASH   | the job's RQ record, fields below; it outlives the   |
|                               |        | job hash until its result or failure time-to-live    |
| `P:{Q}:rq:results:<id>`       | STREAM | the job's last 10 results, newest last: type (1      |
|                               |        | successful, 2 failed), return_value, exc_string,     |
|                               |        | created_at, worker_name                              |
| `P:{Q}:rq:dependents:<id>`    | SET    | `queue/id` of jobs deferred until this one ends      |
| `P:{Q}:rq:finished`           | ZSET   | job id -> time its result expires (+inf: never)      |
| `P:{Q}:rq:deferred`           | ZSET   | job id -> time it was deferred, waiting on its       |
|                               |        | dependencies                                         |
| `P:{Q}:rq:canceled`           | ZSET   | job id -> time it was canceled                       |

Fields of an RQ record: `payload` and `sig` (copies of the job hash's, kept after the job ends),
`status` (queued, started, finished, failed, deferred, scheduled, stopped, canceled),
`enqueued_at` (when the id first entered the ready list, absent before), `started_at`,
`ended_at`, `meta` (JSON), `retries_left`, `worker_name` and `exc_info` (the last failure's
traceback text). A failed job removed from the failed-job registry keeps its record but loses
its job hash.

Global:

| key                   | type | contents                                                         |
|-----------------------|------|------------------------------------------------------------------|
| `P:queues`            | SET  | names of queues that a Runner served or a Client enqueued to, a  |
|                       |      | family as `F[*]`                                                 |
| `P:processes`         | ZSET | Runner process id -> start time                                  |
| `P:process:<proc>`    | HASH | host, pid, queues, concurrency, busy, started_at, last_beat; it |
|                       |      | expires when the process stops heartbeating                      |
| `P:periodic`          | HASH | periodic job name -> JSON: queue, expression, time zone, next run |
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_NAMESPACE = "oxanus"


@dataclass(frozen=True)
class QueueKeys:
    """The keys of one queue."""

    queue: str
    ready: str
    leases: str
    scheduled: str
    retry: str
    dead: str
    stats: str
    cron: str
    unique: str
    throttle: str
    throttle_settings: str
    job_prefix: str
    processing_prefix: str
    # `family` is true for a queue family, the only user of the keys below it.
    family: bool
    active: str
    members: str

    @classmethod
    def build(cls, namespace: str, queue: str, *, family: bool = False) -> QueueKeys:
        base = f"{namespace}:{{{queue}}}:"
        return cls(
            queue=queue,
            ready=base + "ready",
            leases=base + "leases",
            scheduled=base + "scheduled",
            retry=base + "retry",
            dead=base + "dead",
            stats=base + "stats",
            cron=base + "cron",
            unique=base + "unique",
            throttle=base + "throttle",
            throttle_settings=base + "throttle:settings",
            job_prefix=base + "job:",
            processing_prefix=base + "processing:",
            family=family,
            active=base + "active",
            members=base + "members",
        )

    def job(self, job_id: str) -> str:
        return self.job_prefix + job_id

    def processing(self, process_id: str) -> str:
        return self.processing_prefix + process_id

    def member_ready(self, member: str) -> str:
        # push_ready and claim_family_jobs in lua/_common.lua build the same name.
        return self.ready + ":" + member


@dataclass(frozen=True)
class GlobalKeys:
    """The keys shared by every queue of a namespace."""

    queues: str
    processes: str
    process_prefix: str
    periodic: str

    @classmethod
    def build(cls, namespace: str) -> GlobalKeys:
        return cls(
            queues=f"{namespace}:queues",
            processes=f"{namespace}:processes",
            process_prefix=f"{namespace}:process:",
            periodic=f"{namespace}:periodic",
        )

    def process(self, process_id: str) -> str:
        return self.process_prefix + process_id


@dataclass(frozen=True)
class RQKeys:
    """The keys that the RQ-compatible layer adds to one queue."""

    deferred: str
    finished: str
    canceled: str
    record_prefix: str
    results_prefix: str
    dependents_prefix: str

    @classmethod
    def build(cls, namespace: str, queue: str) -> RQKeys:
        base = f"{namespace}:{{{queue}}}:rq:"
        return cls(
            deferred=base + "deferred",
            finished=base + "finished",
            canceled=base + "canceled",
            record_prefix=base + "job:",
            results_prefix=base + "results:",
            dependents_prefix=base + "dependents:",
        )

    def record(self, job_id: str) -> str:
        return self.record_prefix + job_id

    def results(self, job_id: str) -> str:
        return self.results_prefix + job_id

    def dependents(self, job_id: str) -> str:
        return self.dependents_prefix + job_id
