"""RQ's API on oxanus_sync: rewrite `rq` to `oxanus_sync.rq` in imports and keep the code.

    from redis import Redis
    from oxanus_sync.rq import Queue

    queue = Queue("default", connection=Redis())
    job = queue.enqueue(count_words, "https://example.com")

Run the jobs with `oxanus-sync rq worker default` or `Worker(["default"]).work()`. Jobs run in
threads, survive worker crashes through leases, and store their arguments as JSON unless the
pickle serializer is chosen. docs/rq-migration.md lists what differs from RQ.
"""

from oxanus_sync.rq.job import Callback, Job, Retry, cancel_job, get_current_job, requeue_job
from oxanus_sync.rq.options import Dependency
from oxanus_sync.rq.queue import Queue
from oxanus_sync.rq.worker import SimpleWorker, Worker

__all__ = [
    "Callback",
    "Dependency",
    "Job",
    "Queue",
    "Retry",
    "SimpleWorker",
    "Worker",
    "cancel_job",
    "get_current_job",
    "requeue_job",
]
