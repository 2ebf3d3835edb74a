"""Releasing deferred jobs when the jobs they depend on end.

A deferred job's dependencies may live in other queues, whose keys are in other Redis Cluster
slots, so no one script can check them all. Two callers check instead: a worker after it
records a job's end, and the enqueue of a deferred job, again after creating it. Each reads
the dependencies of every dependent and releases the ones whose dependencies all ended. The
release is one script that moves the job only if it is still deferred, so a job released by
two callers runs once. A crash between a job's end and the release leaves its dependents
deferred, because the job's own end is recorded first.
"""

from __future__ import annotations

from oxanus_sync.client import Client
from oxanus_sync.envelope import decode_payload
from oxanus_sync.errors import SerializationError
from oxanus_sync.rq.payload import RQCall
from oxanus_sync.storage.rq_store import RQStorage


def dependencies_met(store: RQStorage, call: RQCall) -> bool:
    """Return whether every dependency of `call` finished (or ended failed, when allowed).

    A dependency whose record is gone (deleted, or expired after its result time-to-live)
    counts as met, since nothing could release its dependents later.
    """
    refs = [(queue, job_id) for queue, job_id in call.depends_on or []]
    done = {"finished", "failed"} if call.allow_dependency_failure else {"finished"}
    return all(status is None or status in done for status in store.statuses(refs))


def release_if_ready(store: RQStorage, queue: str, job_id: str) -> bool:
    """Release the deferred job (queue, job_id) if its dependencies are met."""
    payload = store.record(queue, job_id).get("payload")
    if payload is None:
        return False
    try:
        call = RQCall.from_args(decode_payload(payload).args)
    except SerializationError:
        return False
    if not dependencies_met(store, call):
        return False
    return store.release(queue, job_id, at_front=call.dependents_at_front)


def release_dependents(client: Client, queue: str, job_id: str) -> int:
    """Release the dependents of a job that just ended; return how many were released."""
    store = RQStorage(client.storage)
    released = 0
    for child_queue, child_id in store.dependents(queue, job_id):
        released += release_if_ready(store, child_queue, child_id)
    return released
