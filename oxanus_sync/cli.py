"""The `oxanus-sync` command: run a worker process, or print the state of queues and processes.

    oxanus-sync worker myapp.jobs:config --url redis://127.0.0.1:6379/0 --namespace myapp
    oxanus-sync info --url redis://127.0.0.1:6379/0 --namespace myapp
    oxanus-sync rq worker high default --url redis://127.0.0.1:6379/0

Exit status: 0 on success and after a graceful stop, 1 when Redis cannot be reached or the
worker fails to start, 2 for invalid arguments (a bad APP, URL or namespace, no Redis URL, an
invalid Config). An exception other than an import or configuration error raised while
importing APP, or while calling it, is printed with its traceback, because the bug is then in
the application's code.

This module is the only one that reads the command line, and it reads the environment only for
option defaults (REDIS_URL for --url).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import redis
from redis.sentinel import SentinelConnectionPool

from oxanus_sync.client import Client, describe_server, redact_url
from oxanus_sync.config import Config
from oxanus_sync.errors import ConfigurationError, OxanusError, RedisUnavailableError
from oxanus_sync.runner import Runner
from oxanus_sync.storage.keys import DEFAULT_NAMESPACE
from oxanus_sync.storage.records import ProcessRecord, QueueCounts, ThrottleState

logger = logging.getLogger(__name__)

PROGRAM = "oxanus-sync"

EXIT_OK = 0
EXIT_UNAVAILABLE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

DEFAULT_CONNECT_TIMEOUT_S = 10.0
"""Time in seconds to wait for a TCP or unix socket connection to Redis before giving up."""

_URL_ENV = "REDIS_URL"
_NO_URL_HINT = "pass --url redis://host:port/db or set REDIS_URL"


class CommandError(Exception):
    """An error reported as one line on stderr, with the exit status of the command."""

    def __init__(self, message: str, exit_status: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_status = exit_status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line `argv` (default: `sys.argv[1:]`) and return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_request:
        # argparse exits after --help (status 0) and after a usage error (status 2).
        return _exit_status(exit_request.code)

    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except CommandError as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return error.exit_status
    except KeyboardInterrupt:
        print(f"{PROGRAM}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def build_parser() -> argparse.ArgumentParser:
    """Build the parser of the `worker`, `info` and `rq` subcommands."""
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Run oxanus_sync worker processes and inspect their queues in Redis.",
    )
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    worker = subcommands.add_parser(
        "worker",
        help="run a worker process that serves the queues of a Config",
        description=(
            "Run a worker process that serves the queues of APP until SIGTERM or SIGINT, then "
            "stop gracefully. A second signal exits at once."
        ),
    )
    worker.add_argument(
        "app",
        metavar="APP",
        help=(
            "the Config to run, as module:attribute (for example myapp.jobs:config); the "
            "attribute is a Config or a function that takes no arguments and returns one"
        ),
    )
    _add_connection_options(
        worker, namespace_default="the namespace of the Config's client, else oxanus"
    )
    worker.add_argument(
        "--app-dir",
        default=".",
        metavar="DIR",
        help="directory put first on the Python import path before APP is imported (default: .)",
    )
    worker.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=LOG_LEVELS,
        metavar="LEVEL",
        help=f"minimum level of the log records written to stderr: {', '.join(LOG_LEVELS)} "
        "(default: INFO)",
    )
    worker.set_defaults(run=run_worker)

    info = subcommands.add_parser(
        "info",
        help="print the counts of every queue and the live worker processes",
        description="Print the counts of every known queue and the live worker processes.",
    )
    _add_connection_options(info, namespace_default=DEFAULT_NAMESPACE)
    info.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document with the queues and processes instead of tables",
    )
    info.set_defaults(run=run_info)

    # Imported here because oxanus_sync.rq.cli imports this module's helpers.
    from oxanus_sync.rq.cli import add_rq_command

    add_rq_command(subcommands)
    return parser


def _add_connection_options(parser: argparse.ArgumentParser, *, namespace_default: str) -> None:
    parser.add_argument(
        "--url",
        # An empty REDIS_URL counts as unset.
        default=os.environ.get(_URL_ENV) or None,
        help=(
            "Redis server URL: redis://host:port/db, rediss://host:port/db or "
            "unix:///path/to/redis.sock (default: $REDIS_URL)"
        ),
    )
    parser.add_argument(
        "--namespace",
        type=_namespace,
        metavar="NS",
        help=f"key prefix of the jobs in Redis (default: {namespace_default})",
    )
    parser.add_argument(
        "--connect-timeout",
        type=_positive_seconds,
        default=DEFAULT_CONNECT_TIMEOUT_S,
        metavar="SECONDS",
        help="time to wait for a connection to the Redis server given by --url, in seconds "
        f"(default: {DEFAULT_CONNECT_TIMEOUT_S:g})",
    )


def _namespace(text: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError("invalid namespace '': give a non-empty key prefix")
    return text


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of seconds {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"invalid number of seconds {text!r}: must be above 0")
    return value


def _exit_status(code: object) -> int:
    if code is None:
        return EXIT_OK
    if isinstance(code, int):
        return code
    return EXIT_USAGE


# worker


def run_worker(args: argparse.Namespace) -> int:
    """Run a Runner for the Config named by `args.app` until a stop signal, then return 0."""
    logging.basicConfig(level=args.log_level, format=LOG_FORMAT, stream=sys.stderr)

    config = load_config(args.app, app_dir=args.app_dir)
    client = _worker_client(config, args)
    where = describe_connection(client.redis)
    try:
        runner = Runner(config, client=client)
    except ConfigurationError as error:
        raise CommandError(f"invalid Config {args.app!r}: {error}") from error

    logger.info("connecting to Redis at %s namespace=%s", where, client.namespace)
    _check_reachable(client)
    try:
        runner.run_forever()
    except (redis.ConnectionError, redis.TimeoutError, RedisUnavailableError) as error:
        raise CommandError(_unreachable_message(where, error), EXIT_UNAVAILABLE) from error
    except redis.RedisError as error:
        raise CommandError(_redis_error_message(where, error), EXIT_UNAVAILABLE) from error
    except OxanusError as error:
        raise CommandError(
            f"worker for {args.app!r} on Redis at {where} failed: {error}", EXIT_UNAVAILABLE
        ) from error
    return EXIT_OK


def load_config(app: str, *, app_dir: str | None = None) -> Config:
    """Import the Config named by `app` ("module:attribute"), calling the attribute if needed.

    `app_dir` is put first on `sys.path` beforehand. Raises `CommandError` for a malformed
    value, a module that cannot be imported, a missing attribute or a value of the wrong type.
    """
    module_name, attribute_path = _split_app(app)
    if app_dir is not None:
        _prepend_import_path(app_dir)
    module = _import_app_module(app, module_name)

    target: object = module
    for name in attribute_path.split("."):
        try:
            target = getattr(target, name)
        except AttributeError:
            raise CommandError(
                f"module {module_name!r} has no attribute {attribute_path!r} (APP {app!r}); "
                "name a Config or a function that returns one"
            ) from None

    if isinstance(target, Config):
        return target
    if not callable(target):
        raise CommandError(
            f"APP {app!r} is a {type(target).__name__}, not a Config; name a Config or a "
            "function that takes no arguments and returns one"
        )

    try:
        result = target()
    except OxanusError as error:
        raise CommandError(f"calling APP {app!r} failed: {error}") from error
    if not isinstance(result, Config):
        raise CommandError(
            f"APP {app!r} returned a {type(result).__name__}, not a Config; make it return a Config"
        )
    return result


def _split_app(app: str) -> tuple[str, str]:
    module_name, colon, attribute_path = app.partition(":")
    valid = (
        colon
        and all(part.isidentifier() for part in module_name.split("."))
        and all(part.isidentifier() for part in attribute_path.split("."))
    )
    if not valid:
        raise CommandError(
            f"invalid APP {app!r}: expected module:attribute, for example myapp.jobs:config"
        )
    return module_name, attribute_path


def _prepend_import_path(app_dir: str) -> None:
    path = os.path.abspath(app_dir)
    if path not in sys.path:
        sys.path.insert(0, path)


def _import_app_module(app: str, module_name: str) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        missing = error.name or ""
        if module_name == missing or module_name.startswith(f"{missing}."):
            raise CommandError(
                f"module {module_name!r} of APP {app!r} not found; check the module path, and "
                "run from the directory that contains it or pass --app-dir"
            ) from error
        raise CommandError(
            f"importing module {module_name!r} of APP {app!r} failed: {error}; install the "
            "missing package"
        ) from error
    except ImportError as error:
        raise CommandError(
            f"importing module {module_name!r} of APP {app!r} failed: {error}"
        ) from error
    except OxanusError as error:
        raise CommandError(
            f"importing module {module_name!r} of APP {app!r} failed: {error}"
        ) from error


def _worker_client(config: Config, args: argparse.Namespace) -> Client:
    """Return the client of a worker: one for --url or REDIS_URL, else the Config's own."""
    own = config.client
    if args.url:
        namespace = args.namespace or (own.namespace if own is not None else DEFAULT_NAMESPACE)
        return connect(args.url, namespace, connect_timeout_s=args.connect_timeout)

    if own is None:
        raise CommandError(
            f"no Redis URL for APP {args.app!r}: {_NO_URL_HINT}, or give the Config a client "
            "with Config(client=Client.from_url(url))"
        )
    if args.namespace and args.namespace != own.namespace:
        try:
            return Client(own.redis, namespace=args.namespace)
        except ConfigurationError as error:
            raise CommandError(str(error)) from error
    return own


def _check_reachable(client: Client) -> None:
    where = describe_connection(client.redis)
    try:
        client.redis.ping()
    except (redis.ConnectionError, redis.TimeoutError, RedisUnavailableError) as error:
        raise CommandError(_unreachable_message(where, error), EXIT_UNAVAILABLE) from error
    except redis.RedisError as error:
        raise CommandError(_redis_error_message(where, error), EXIT_UNAVAILABLE) from error


# info


def run_info(args: argparse.Namespace) -> int:
    """Print the queues and live processes of a namespace, then return 0."""
    if not args.url:
        raise CommandError(f"no Redis URL: {_NO_URL_HINT}")
    client = connect(
        args.url, args.namespace or DEFAULT_NAMESPACE, connect_timeout_s=args.connect_timeout
    )
    where = describe_connection(client.redis)
    try:
        counts = client.stats()
        processes = client.processes()
        periodic = client.periodic_jobs()
        now_ms = client.server_time_ms()
    except (redis.ConnectionError, redis.TimeoutError, RedisUnavailableError) as error:
        raise CommandError(_unreachable_message(where, error), EXIT_UNAVAILABLE) from error
    except ConfigurationError as error:
        raise CommandError(str(error), EXIT_UNAVAILABLE) from error
    except redis.RedisError as error:
        raise CommandError(_redis_error_message(where, error), EXIT_UNAVAILABLE) from error
    finally:
        client.close()

    if args.json:
        document = info_document(client.namespace, counts, processes)
        document["periodic"] = periodic
        print(json.dumps(document, indent=2))
    else:
        print(f"namespace {client.namespace!r} on {where}")
        print()
        print("\n".join(format_queues(counts)))
        families = format_families(counts)
        if families:
            print()
            print("\n".join(families))
        print()
        features = format_queue_features(counts)
        if features:
            print("\n".join(features))
            print()
        print("\n".join(format_processes(processes, now_ms)))
        print()
        print("\n".join(format_periodic(periodic, now_ms)))
    return EXIT_OK


def info_document(
    namespace: str, counts: Sequence[QueueCounts], processes: Sequence[ProcessRecord]
) -> dict[str, Any]:
    """Build the `info --json` document. Times are milliseconds since the epoch."""
    return {
        "namespace": namespace,
        "queues": [dataclasses.asdict(queue) for queue in counts],
        "processes": [
            {
                "id": record.id,
                "host": record.host,
                "pid": record.pid,
                "queues": record.queues,
                "busy": record.busy,
                "concurrency": record.concurrency,
                "started_at_ms": record.started_at_ms,
                "last_beat_ms": record.last_beat_ms,
                "failing": failing_threads(record),
            }
            for record in processes
        ],
    }


def format_queues(counts: Sequence[QueueCounts]) -> list[str]:
    """Format queue counts as the lines of an aligned table, or one line "no queues"."""
    if not counts:
        return ["no queues"]
    headers = (
        "queue",
        "ready",
        "scheduled",
        "retry",
        "dead",
        "running",
        "orphaned",
        "latency",
        "processed",
        "succeeded",
        "failed",
    )
    rows = [
        (
            queue.queue,
            _count(queue.ready),
            _count(queue.scheduled),
            _count(queue.retry),
            _count(queue.dead),
            str(queue.running),
            str(queue.orphaned),
            # The stats script reports 0 when nothing is ready, which is no age at all.
            format_duration(queue.latency_ms) if queue.ready > 0 else "-",
            str(queue.processed),
            str(queue.succeeded),
            str(queue.failed),
        )
        for queue in counts
    ]
    return format_table(headers, rows, left_aligned={0})


def format_queue_features(counts: Sequence[QueueCounts]) -> list[str]:
    """Format unique keys, timeouts, cancellations and throttles of the queues that have any.

    Returns no lines when no queue uses these features.
    """
    headers = ("queue", "unique keys", "timed out", "cancelled", "throttle", "in window", "next")
    rows = [
        (
            queue.queue,
            _count(queue.unique_keys),
            str(queue.timed_out),
            str(queue.cancelled),
            *_throttle_columns(queue.throttle),
        )
        for queue in counts
        if queue.unique_keys or queue.timed_out or queue.cancelled or queue.throttle
    ]
    return format_table(headers, rows, left_aligned={0, 4}) if rows else []


def _throttle_columns(throttle: ThrottleState | None) -> tuple[str, str, str]:
    # The throttle, the starts taken in its current window, and when the next start is allowed.
    if throttle is None:
        return "-", "-", "-"
    limit = f"{throttle.limit} per {format_duration(throttle.window_ms)}"
    used = f"{throttle.used}/{throttle.limit}"
    next_start = (
        f"in {format_duration(throttle.next_start_ms)}" if throttle.next_start_ms else "now"
    )
    return limit, used, next_start


def format_families(counts: Sequence[QueueCounts]) -> list[str]:
    """Format the members of each queue family as an aligned table, or no lines without one."""
    headers = ("queue family", "members", "active", "biggest backlogs")
    rows = [
        (
            queue.queue,
            _count(queue.family.members),
            _count(queue.family.active),
            ", ".join(
                f"{member} {ready}" for member, ready in queue.family.biggest_backlogs.items()
            )
            or "-",
        )
        for queue in counts
        if queue.family is not None
    ]
    return format_table(headers, rows, left_aligned={0, 3}) if rows else []


def format_periodic(periodic: dict[str, dict[str, Any]], now_ms: int) -> list[str]:
    """Format periodic jobs with their next run as an aligned table, or "no periodic jobs"."""
    if not periodic:
        return ["no periodic jobs"]
    headers = ("periodic job", "queue", "expression", "timezone", "next run")
    rows = [
        (
            name,
            str(entry.get("queue", "?")),
            str(entry.get("expression", "?")),
            str(entry.get("timezone", "?")),
            f"in {format_duration(max(int(entry.get('next_run_ms', now_ms)) - now_ms, 0))}",
        )
        for name, entry in sorted(periodic.items())
    ]
    return format_table(headers, rows, left_aligned={0, 1, 2, 3})


def _count(value: int) -> str:
    # The stats script returns -1 for a key of the wrong type.
    return "?" if value < 0 else str(value)


def format_processes(processes: Sequence[ProcessRecord], now_ms: int) -> list[str]:
    """Format live processes as the lines of an aligned table, or one line "no live processes".

    Ages are measured against `now_ms`, the Redis server's clock in milliseconds since the
    epoch, the clock that Runners also use for their registry entries.
    """
    if not processes:
        return ["no live processes"]
    headers = ("id", "host", "pid", "queues", "busy", "uptime", "last beat", "failing")
    rows = []
    for record in processes:
        rows.append(
            (
                record.id,
                record.host,
                str(record.pid),
                ",".join(record.queues),
                f"{record.busy}/{record.concurrency}",
                format_duration(now_ms - record.started_at_ms),
                format_duration(now_ms - record.last_beat_ms),
                _failing_cell(record),
            )
        )
    return format_table(headers, rows, left_aligned={0, 1, 3, 7})


def _failing_cell(record: ProcessRecord) -> str:
    failing = failing_threads(record)
    if failing is None:
        return "unreadable"
    return ",".join(sorted(failing)) or "-"


def failing_threads(record: ProcessRecord) -> dict[str, str] | None:
    """Return the failing threads of a process (thread name -> last error), None if unreadable."""
    text = record.raw.get("failing")
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    return {str(name): str(error) for name, error in value.items()}


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], *, left_aligned: set[int]
) -> list[str]:
    """Align `rows` under `headers`. Columns in `left_aligned` are text, the others numbers."""
    widths = [len(header) for header in headers]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]

    def format_row(cells: Sequence[str]) -> str:
        aligned = [
            cell.ljust(width) if index in left_aligned else cell.rjust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(aligned).rstrip()

    return [format_row(headers), *(format_row(row) for row in rows)]


def format_duration(ms: int) -> str:
    """Format a duration in milliseconds for people: 12ms, 3.4s, 5.2min, 3.1h, 2.0d.

    Negative values, which clock skew between hosts can produce, show as 0ms.
    """
    ms = max(ms, 0)
    if ms < 1000:
        return f"{ms}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}min"
    if seconds < 86_400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86_400:.1f}d"


# Connections


def connect(url: str, namespace: str, *, connect_timeout_s: float) -> Client:
    """Build a Client for `url`. Raises `CommandError` for an invalid URL or namespace."""
    try:
        return Client.from_url(url, namespace=namespace, socket_connect_timeout=connect_timeout_s)
    except ConfigurationError as error:
        # The library's message quotes the URL, which may contain a password.
        message = str(error).replace(url, redact_url(url))
        raise CommandError(message) from error


def describe_connection(connection: redis.Redis) -> str:
    """Return where `connection` points, as a URL without credentials."""
    pool = connection.connection_pool
    if isinstance(pool, SentinelConnectionPool):
        return describe_server(connection)
    options = pool.connection_kwargs
    path = options.get("path")
    if path:
        return f"unix://{path}"
    scheme = "rediss" if issubclass(pool.connection_class, redis.SSLConnection) else "redis"
    host = options.get("host", "localhost")
    port = options.get("port", 6379)
    db = options.get("db", 0)
    return f"{scheme}://{host}:{port}/{db}"


def _redis_error_message(where: str, error: redis.RedisError) -> str:
    return (
        f"Redis at {where} returned an error: {type(error).__name__}: {error}. Check that the "
        "URL names a Redis or Valkey server, its database number and the user's permissions"
    )


def _unreachable_message(where: str, error: Exception) -> str:
    # redis-py ends some messages with a period, which reads badly before the semicolon.
    reason = str(error).rstrip(".")
    if isinstance(error, redis.AuthenticationError) or isinstance(
        error.__cause__, redis.AuthenticationError
    ):
        return (
            f"Redis at {where} rejected the credentials: {reason}; check the URL's user and "
            "password"
        )
    return (
        f"cannot reach Redis at {where}: {reason}; check that the server is running and that "
        "the URL is right"
    )
