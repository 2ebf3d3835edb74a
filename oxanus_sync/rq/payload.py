"""The payload of an RQ-layer job: an ordinary job envelope of type `oxanus_sync.rq`.

Everything fixed at enqueue is in the payload, which is signed when the Client has signing
keys: the function's path, the serialized arguments and the options. What changes later
(status, meta, times, results) is in the job's RQ record.
"""

from __future__ import annotations

from typing import Any

from oxanus_sync.context import Context
from oxanus_sync.worker import Worker

JOB_TYPE = "oxanus_sync.rq"


class RQCall(Worker, name=JOB_TYPE):
    """One RQ-layer job as stored in its payload.

    `call` is the serialized `[args, kwargs]` (or `[args, kwargs, instance]` with pickle);
    `serializer` names the serializer that wrote it. `depends_on` lists `[queue, id]` pairs.
    `callbacks` maps "success", "failure" and "stopped" to `[path, timeout]`.
    """

    func: str
    call: bytes
    serializer: str = "json"
    description: str = ""
    timeout: int = 180
    result_ttl: int | None = None
    ttl: int | None = None
    failure_ttl: int | None = None
    retry_max: int = 0
    retry_intervals: list[int] | None = None
    retry_at_front: bool = False
    callbacks: dict[str, Any] | None = None
    depends_on: list[list[str]] | None = None
    allow_dependency_failure: bool = False
    dependents_at_front: bool = False

    def process(self, ctx: Context[Any]) -> None:
        # A native Runner that registered this type would land here; RQ-layer jobs need the
        # layer's own worker, which records results and statuses.
        raise RuntimeError(
            "jobs enqueued through oxanus_sync.rq run in oxanus_sync.rq.Worker or "
            "`oxanus-sync rq worker`, not in a native Runner"
        )
