"""FinishBatcher: concurrent calls share batches, and each caller gets its own result."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from oxanus_sync.runner.batching import MAX_BATCH, FinishBatcher
from tests.helpers import wait_until


class GatedSender:
    """Doubles each call; the first batch waits until the test opens the gate."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, calls: Sequence[int]) -> list[int | Exception]:
        with self._lock:
            self.batches.append(list(calls))
            first = len(self.batches) == 1
        if first:
            self.gate.wait(10)
        return [ValueError(f"call {call} rejected") if call < 0 else call * 2 for call in calls]


def test_lone_call_sent_at_once() -> None:
    sender = GatedSender()
    sender.gate.set()
    batcher: FinishBatcher[int, int] = FinishBatcher(sender)

    assert batcher.submit(21) == 42
    assert sender.batches == [[21]]


def test_calls_during_send_share_next_batch() -> None:
    sender = GatedSender()
    batcher: FinishBatcher[int, int] = FinishBatcher(sender)

    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(batcher.submit, 1)
        wait_until(lambda: sender.batches, 5, "the first call is being sent")
        rest = [pool.submit(batcher.submit, call) for call in range(2, 7)]
        wait_until(lambda: len(batcher._queued) == 5, 5, "five calls queued behind it")
        sender.gate.set()
        results = [first.result(10)] + [future.result(10) for future in rest]

    assert results == [2, 4, 6, 8, 10, 12]
    assert sender.batches[0] == [1]
    assert sorted(sender.batches[1]) == [2, 3, 4, 5, 6]
    assert len(sender.batches) == 2


def test_error_of_one_call_raised_to_its_caller() -> None:
    sender = GatedSender()
    batcher: FinishBatcher[int, int] = FinishBatcher(sender)

    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(batcher.submit, 1)
        wait_until(lambda: sender.batches, 5, "the first call is being sent")
        bad = pool.submit(batcher.submit, -1)
        good = pool.submit(batcher.submit, 3)
        wait_until(lambda: len(batcher._queued) == 2, 5, "two calls queued")
        sender.gate.set()

        assert first.result(10) == 2
        assert good.result(10) == 6
        with pytest.raises(ValueError, match="call -1 rejected"):
            bad.result(10)


def test_failed_batch_raised_to_every_caller() -> None:
    def failing(calls: Sequence[int]) -> list[int | Exception]:
        raise ConnectionError("link down")

    batcher: FinishBatcher[int, int] = FinishBatcher(failing)

    with pytest.raises(ConnectionError, match="link down"):
        batcher.submit(1)
    # The batcher is ready for the next caller after a failure.
    with pytest.raises(ConnectionError, match="link down"):
        batcher.submit(2)


def test_batches_capped_at_max_batch() -> None:
    sender = GatedSender()
    batcher: FinishBatcher[int, int] = FinishBatcher(sender)
    callers = MAX_BATCH + 10

    with ThreadPoolExecutor(callers + 1) as pool:
        first = pool.submit(batcher.submit, 0)
        wait_until(lambda: sender.batches, 5, "the first call is being sent")
        rest = [pool.submit(batcher.submit, call) for call in range(1, callers + 1)]
        wait_until(lambda: len(batcher._queued) == callers, 5, "every call queued")
        sender.gate.set()
        results = [first.result(10)] + [future.result(10) for future in rest]

    assert results == [call * 2 for call in range(callers + 1)]
    assert [len(batch) for batch in sender.batches] == [1, MAX_BATCH, 10]
