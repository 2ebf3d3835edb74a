"""`StopSignals`: the first SIGTERM or SIGINT requests a graceful stop, the second exits at once."""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """Stop requests of one worker loop, from signals or from any thread.

    `requested` is set by the first signal or by `request()`. A second signal writes a line to
    stderr and ends the process with status 1, without cleanup, because the graceful stop is
    what the operator chose to skip. Handlers go in only from the main thread, where Python
    runs them; from another thread, call `request()`.
    """

    def __init__(self, first_message: bytes | None = None) -> None:
        self.requested = threading.Event()
        self._first_message = first_message
        self._received = 0

    def request(self) -> None:
        self.requested.set()

    def install(self) -> dict[int, Any]:
        """Install the handlers; return the previous ones for `restore`."""
        if threading.current_thread() is not threading.main_thread():
            return {}
        return {sig: signal.signal(sig, self._handle) for sig in STOP_SIGNALS}

    def restore(self, previous: dict[int, Any]) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        # os.write, not logging or print: the handler may run in the middle of a write to
        # stderr, and Python's buffered streams raise on such a reentrant write.
        self._received += 1
        if self._received > 1:
            os.write(2, b"oxanus_sync: second stop signal, exiting at once\n")
            os._exit(1)
        if self._first_message is not None:
            os.write(2, self._first_message)
        self.requested.set()
