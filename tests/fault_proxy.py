"""A TCP proxy for tests that can break the network between a client and a Redis server.

    with FaultProxy(server.port) as proxy:
        client = redis.Redis.from_url(proxy.url)
        proxy.set_mode(Mode.BLACKHOLE)   # every open connection goes silent
        proxy.set_mode(Mode.FORWARD)     # new connections work again

Modes:

- `Mode.FORWARD` forwards bytes both ways, and closes a connection when either side closes it.
- `Mode.BLACKHOLE` makes every open connection, and every connection accepted while the mode
  lasts, silently dead. The proxy keeps reading and discards the bytes in both directions. It
  never sends FIN or RST, not even when the server closes its side. A connection stays dead
  after the mode changes back to forward, as when a firewall or NAT on the path has dropped its
  state, so a client notices only through its own timeouts and recovers by reconnecting.
- `Mode.RESET` closes every open connection with a TCP RST (SO_LINGER 0), and resets each
  connection accepted while the mode lasts at once.

Only the standard library is used: one thread accepts connections and two threads per
connection copy bytes. Every thread is a daemon and `close()` joins them.
"""

from __future__ import annotations

import contextlib
import enum
import select
import socket
import struct
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Self

POLL_INTERVAL_S = 0.05
"""How often the proxy's threads check whether they must stop, in seconds."""

CONNECT_TIMEOUT_S = 5.0
"""Maximum time to connect to the target server for one accepted connection, in seconds."""

JOIN_TIMEOUT_S = 5.0
"""Maximum time `close()` waits for each thread of the proxy to exit, in seconds."""

_BUFFER_SIZE = 65536


class Mode(enum.Enum):
    """How the proxy treats connections, as described in the module documentation."""

    FORWARD = "forward"
    BLACKHOLE = "blackhole"
    RESET = "reset"


class _Link:
    """One accepted client connection and its connection to the target server, if any."""

    def __init__(self, client: socket.socket, upstream: socket.socket | None) -> None:
        self.client = client
        self.upstream = upstream
        # A dead link discards every byte, and it never becomes live again.
        self.dead = upstream is None
        self.closed = False
        self.lock = threading.Lock()

    def close(self) -> None:
        """Close both sockets with a normal FIN."""
        with self.lock:
            if self.closed:
                return
            self.closed = True
            for sock in (self.client, self.upstream):
                if sock is not None:
                    _shutdown_and_close(sock)

    def reset(self) -> None:
        """Close the client socket with a TCP RST, and the upstream socket normally."""
        with self.lock:
            if self.closed:
                return
            self.closed = True
            _close_with_reset(self.client)
            if self.upstream is not None:
                _shutdown_and_close(self.upstream)


class FaultProxy:
    """A proxy from a free port of 127.0.0.1 to `target_host:target_port`, started at once.

    `url` is the Redis URL of the proxy. Use it as a context manager, or call `close()`, to
    close every connection and stop its threads.
    """

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self._mode = Mode.FORWARD
        self._lock = threading.Lock()
        self._links: list[_Link] = []
        self._threads: list[threading.Thread] = []
        self._stopped = threading.Event()

        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port: int = self._listener.getsockname()[1]
        self._start_thread(self._accept_loop, "fault-proxy-accept")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    @property
    def mode(self) -> Mode:
        return self._mode

    def set_mode(self, mode: Mode) -> None:
        """Switch to `mode`. Blackhole kills the open connections and reset closes them."""
        with self._lock:
            self._mode = mode
            links = list(self._links)
            if mode is Mode.RESET:
                self._links.clear()

        for link in links:
            if mode is Mode.BLACKHOLE:
                link.dead = True
            elif mode is Mode.RESET:
                link.reset()

    def close(self) -> None:
        """Stop accepting, close every connection and join the threads."""
        self._stopped.set()
        with self._lock:
            links = list(self._links)
            self._links.clear()
        for link in links:
            link.close()

        current = threading.current_thread()
        for thread in list(self._threads):
            if thread is not current:
                thread.join(timeout=JOIN_TIMEOUT_S)
        self._listener.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _start_thread(self, target: Callable[..., None], name: str, *args: object) -> None:
        thread = threading.Thread(target=target, name=name, args=args, daemon=True)
        with self._lock:
            self._threads = [known for known in self._threads if known.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            readable, _, _ = select.select([self._listener], [], [], POLL_INTERVAL_S)
            if not readable:
                continue
            try:
                client, _ = self._listener.accept()
            except OSError:
                continue
            self._open_link(client)

    def _open_link(self, client: socket.socket) -> None:
        mode = self._mode
        if mode is Mode.RESET:
            _close_with_reset(client)
            return

        upstream = None
        if mode is Mode.FORWARD:
            try:
                upstream = socket.create_connection(self.target, timeout=CONNECT_TIMEOUT_S)
            except OSError:
                # The server is down: the client sees the refusal as a reset.
                _close_with_reset(client)
                return
            upstream.settimeout(None)

        link = _Link(client, upstream)
        with self._lock:
            if self._stopped.is_set():
                link.close()
                return
            self._links.append(link)

        self._start_thread(self._pump, "fault-proxy-up", link, client, upstream)
        if upstream is not None:
            self._start_thread(self._pump, "fault-proxy-down", link, upstream, client)

    def _pump(self, link: _Link, source: socket.socket, destination: socket.socket | None) -> None:
        """Copy bytes from `source` to `destination` until either closes or the proxy stops."""
        from_client = source is link.client
        while not self._stopped.is_set() and not link.closed:
            try:
                readable, _, _ = select.select([source], [], [], POLL_INTERVAL_S)
                if not readable:
                    continue
                data = source.recv(_BUFFER_SIZE)
            except (OSError, ValueError):
                # ValueError: select() on a socket that another thread closed.
                break

            if not data:
                # A dead link hides the server's FIN from the client, so that link stays open
                # until the client closes it.
                if link.dead and not from_client:
                    return
                link.close()
                return
            if link.dead or destination is None:
                continue
            try:
                destination.sendall(data)
            except OSError:
                break

        if not link.dead:
            link.close()


def _shutdown_and_close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def _close_with_reset(sock: socket.socket) -> None:
    # With SO_LINGER on and a zero timeout, close() sends RST instead of FIN.
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
