"""The `@job` decorator: `f.delay(...)` enqueues a call of `f`, and `f(...)` still runs it."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from oxanus_sync.rq.job import Job
from oxanus_sync.rq.queue import Queue


class job:  # noqa: N801 - RQ's name
    """Decorate a function so that `f.delay(*args, **kwargs)` enqueues it on `queue`.

    The options are those of `Queue.enqueue_call`; per call, `job_id`, `depends_on` and
    `at_front` can be given to `delay` as keyword arguments.
    """

    def __init__(
        self,
        queue: Queue | str,
        connection: Any = None,
        timeout: int | str | None = None,
        result_ttl: int | str | None = None,
        ttl: int | str | None = None,
        queue_class: type[Queue] | None = None,
        depends_on: Any = None,
        at_front: bool = False,
        meta: dict[str, Any] | None = None,
        description: str | None = None,
        failure_ttl: int | str | None = None,
        retry: Any = None,
        on_success: Any = None,
        on_failure: Any = None,
        on_stopped: Any = None,
        **kwargs: Any,
    ) -> None:
        if isinstance(queue, str):
            if connection is None:
                raise TypeError("@job('name') needs connection=; or pass a Queue")
            queue = (queue_class or Queue)(queue, connection=connection)
        self.queue = queue
        self.options: dict[str, Any] = {
            "timeout": timeout,
            "result_ttl": result_ttl,
            "ttl": ttl,
            "depends_on": depends_on,
            "at_front": at_front,
            "meta": meta,
            "description": description,
            "failure_ttl": failure_ttl,
            "retry": retry,
            "on_success": on_success,
            "on_failure": on_failure,
            "on_stopped": on_stopped,
        }

    def __call__(self, f: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(f)
        def delay(*args: Any, **kwargs: Any) -> Job:
            options = dict(self.options)
            for name in ("job_id", "depends_on", "at_front"):
                if name in kwargs:
                    options[name] = kwargs.pop(name)
            return self.queue.enqueue_call(f, args=args, kwargs=kwargs, **options)

        f.delay = delay  # type: ignore[attr-defined]
        f.enqueue = delay  # type: ignore[attr-defined]
        return f
