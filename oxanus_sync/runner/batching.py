"""`FinishBatcher`: sends the outcomes that pool threads record at the same time in one pipeline.

Each pool thread records its job's outcome and claims its next job with one script call. With
many short jobs, several threads make that call at nearly the same moment, and each round trip
costs far more Python CPU in the client than the script costs Redis. The first thread sends its
call at once, as the leader. Threads that arrive while that pipeline is on the way queue their
calls. When it returns, the first queued thread leads the next pipeline with all queued calls.
No thread waits for a timer, so a lone call goes out as soon as it is made.

The leader wakes only the first thread of its batch, and each woken thread wakes the next. Woken
all at once, they would all compete for the GIL, and each lost round costs a context switch.

Every thread still gets back its own result or error, so the callers' handling of lost
ownership and Redis outages is the same as with one call each.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

CallT = TypeVar("CallT")
ResultT = TypeVar("ResultT")

# Maximum number of calls in one pipeline; the rest wait for the next one.
MAX_BATCH = 64


class _Waiter(Generic[CallT, ResultT]):
    """One queued call, waiting for its result or for its turn to lead.

    `done` is a lock taken at creation: releasing it wakes the waiting thread. A plain lock
    costs far less than a `threading.Event`, which builds a condition variable, and only one
    thread ever waits on it.
    """

    __slots__ = ("call", "done", "error", "lead", "next", "result")

    def __init__(self, call: CallT) -> None:
        self.call = call
        self.done = threading.Lock()
        self.done.acquire()
        self.lead = False
        self.next: _Waiter[CallT, ResultT] | None = None
        self.result: ResultT | None = None
        self.error: BaseException | None = None


class FinishBatcher(Generic[CallT, ResultT]):
    """Group calls made by concurrent threads into batches sent with `send_many`.

    `send_many` takes a list of calls and returns one result or exception per call, in order,
    or raises when the whole batch failed.
    """

    def __init__(self, send_many: Callable[[Sequence[CallT]], Sequence[ResultT | Exception]]):
        self._send_many = send_many
        self._lock = threading.Lock()
        self._queued: list[_Waiter[CallT, ResultT]] = []
        self._leading = False

    def submit(self, call: CallT) -> ResultT:
        """Send `call`, alone or with the calls of other threads; return its result or raise."""
        with self._lock:
            alone = not self._leading
            self._leading = True
            if not alone:
                waiter: _Waiter[CallT, ResultT] = _Waiter(call)
                self._queued.append(waiter)
        if alone:
            # No pipeline is on the way, so no call is queued either: send this one by itself.
            return self._send_alone(call)

        try:
            waiter.done.acquire()
        finally:
            # Wake the next thread of the same batch, which then wakes the one after it.
            if waiter.next is not None:
                waiter.next.done.release()
        if waiter.lead:
            self._lead()

        if waiter.error is not None:
            raise waiter.error
        return waiter.result  # type: ignore[return-value]

    def _send_alone(self, call: CallT) -> ResultT:
        try:
            (result,) = self._send_many([call])
        finally:
            self._pass_lead()
        if isinstance(result, Exception):
            raise result
        return result

    def _lead(self) -> None:
        with self._lock:
            batch = self._queued[:MAX_BATCH]
            del self._queued[:MAX_BATCH]

        try:
            results = self._send_many([waiter.call for waiter in batch])
        except BaseException as error:  # noqa: BLE001 - handed to every caller of the batch
            for waiter in batch:
                waiter.error = error
        else:
            for waiter, result in zip(batch, results, strict=True):
                if isinstance(result, Exception):
                    waiter.error = result
                else:
                    waiter.result = result

        self._pass_lead()
        followers = [waiter for waiter in batch if not waiter.lead]
        for waiter in batch:
            waiter.lead = False
        for waiter, following in itertools.pairwise(followers):
            waiter.next = following
        if followers:
            followers[0].done.release()

    def _pass_lead(self) -> None:
        # The first queued thread, if any, sends the next batch; else the next caller leads.
        with self._lock:
            if self._queued:
                successor = self._queued[0]
                successor.lead = True
                successor.done.release()
            else:
                self._leading = False
