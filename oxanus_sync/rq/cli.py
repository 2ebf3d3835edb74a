"""`oxanus-sync rq COMMAND`: RQ's `worker`, `info`, `requeue` and `empty` commands and flags.

    oxanus-sync rq worker high default low --url redis://127.0.0.1:6379/0 --concurrency 4
    oxanus-sync rq info
    oxanus-sync rq requeue --queue default --all
    oxanus-sync rq empty default

`oxanus_sync.cli` parses the command line and calls these functions. `--url` defaults to
RQ_REDIS_URL, else REDIS_URL. RQ's flags for forking, process monitoring and its own classes
are accepted and ignored, so that existing command lines keep working. The migration page
lists them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import redis

from oxanus_sync.cli import (
    EXIT_OK,
    EXIT_UNAVAILABLE,
    LOG_FORMAT,
    CommandError,
    connect,
    describe_connection,
)
from oxanus_sync.client import Client
from oxanus_sync.config import RunnerSettings
from oxanus_sync.errors import ConfigurationError, OxanusError, RedisUnavailableError
from oxanus_sync.rq.execution import ExceptionHandler
from oxanus_sync.rq.queue import Queue
from oxanus_sync.rq.worker import Worker
from oxanus_sync.storage.keys import DEFAULT_NAMESPACE
from oxanus_sync.storage.rq_store import RQStorage

logger = logging.getLogger(__name__)

_URL_ENVS = ("RQ_REDIS_URL", "REDIS_URL")
_WORKER_CLASSES = ("rq.Worker", "rq.SimpleWorker", "rq.worker.Worker", "rq.worker.SimpleWorker")


def add_rq_command(subcommands: Any) -> None:
    """Add the `rq` command, with its own subcommands, to the `oxanus-sync` parser."""
    rq = subcommands.add_parser(
        "rq",
        help="RQ's commands (worker, info, requeue, empty) for jobs of oxanus_sync.rq",
        description="RQ's commands and flags, for jobs enqueued through oxanus_sync.rq.",
    )
    commands = rq.add_subparsers(dest="rq_command", required=True, metavar="COMMAND")
    _add_worker(commands)
    _add_info(commands)
    _add_requeue(commands)
    _add_empty(commands)


def _common(parser: argparse.ArgumentParser) -> None:
    default_url = next((os.environ[name] for name in _URL_ENVS if os.environ.get(name)), None)
    parser.add_argument(
        "-u",
        "--url",
        default=default_url,
        help="Redis server URL (default: $RQ_REDIS_URL, else $REDIS_URL)",
    )
    parser.add_argument(
        "--namespace",
        default=DEFAULT_NAMESPACE,
        metavar="NS",
        help=f"key prefix of the jobs in Redis (default: {DEFAULT_NAMESPACE})",
    )
    parser.add_argument(
        "-c",
        "--config",
        metavar="MODULE",
        help="settings module with REDIS_URL, QUEUES and NAME, as RQ reads it",
    )
    parser.add_argument(
        "-P",
        "--path",
        action="append",
        default=[],
        metavar="DIR",
        help="directory put first on the import path; repeatable (default: .)",
    )
    parser.add_argument(
        "-S",
        "--serializer",
        default=None,
        help="serializer of job data: json (default), pickle, or a dotted path",
    )
    # RQ's class options: this layer has one worker and one job class, so they are ignored.
    for flags in (
        ("-w", "--worker-class"),
        ("-j", "--job-class"),
        ("--queue-class",),
        ("--connection-class",),
    ):
        parser.add_argument(*flags, help=argparse.SUPPRESS)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}: give a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}: must be 1 or more")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of seconds {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"invalid number of seconds {text!r}: must be above 0")
    return value


def _add_worker(commands: Any) -> None:
    worker = commands.add_parser(
        "worker",
        help="run a worker serving QUEUES in priority order",
        description=(
            "Serve QUEUES (default: default) in strict priority order until SIGTERM or SIGINT, "
            "then let running jobs finish. A second signal exits at once."
        ),
    )
    worker.add_argument("queues", nargs="*", metavar="QUEUE")
    _common(worker)
    worker.add_argument("-b", "--burst", action="store_true", help="stop when the queues are empty")
    worker.add_argument(
        "-s",
        "--with-scheduler",
        action="store_true",
        help="accepted for RQ compatibility: scheduled jobs always run when due",
    )
    worker.add_argument("-n", "--name", help="worker name (default: a random id)")
    worker.add_argument(
        "--results-ttl",
        type=int,
        default=500,
        metavar="SECONDS",
        help="how long results of jobs without result_ttl are kept, in seconds (default: 500)",
    )
    worker.add_argument("--max-jobs", type=_positive_int, metavar="N", help="stop after N jobs")
    worker.add_argument(
        "--max-idle-time",
        type=_positive_float,
        metavar="SECONDS",
        help="stop after this many seconds without a job",
    )
    worker.add_argument(
        "--exception-handler",
        action="append",
        default=[],
        metavar="PATH",
        help="dotted path of a function called as handler(job, exc_type, exc_value, "
        "traceback) for each failure; repeatable",
    )
    worker.add_argument(
        "-d",
        "--disable-default-exception-handler",
        action="store_true",
        help="keep failed jobs out of the failed job registry",
    )
    worker.add_argument(
        "--concurrency",
        type=int,
        default=1,
        metavar="N",
        help="jobs run at once, each in a thread of this process (default: 1, as RQ)",
    )
    worker.add_argument(
        "--allow-module",
        action="append",
        default=None,
        metavar="PREFIX",
        help="run only functions of modules with this prefix; repeatable (default: any module "
        "outside the standard library)",
    )
    worker.add_argument(
        "--signing-key-env",
        metavar="VAR",
        help="name of the environment variable holding the key that payloads must be signed with",
    )
    worker.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    worker.add_argument("-v", "--verbose", action="store_true", help="log debug messages too")
    worker.add_argument("--logging_level", "--logging-level", dest="logging_level", default="INFO")
    worker.add_argument("--log-format", default=LOG_FORMAT)
    worker.add_argument("--date-format", default=None)
    worker.add_argument("--pid", metavar="FILE", help="write the process id to FILE")
    # Leases, heartbeats and the scheduler replace RQ's timing options, which are ignored.
    for flags in (
        ("--worker-ttl",),
        ("--maintenance-interval",),
        ("--job-monitoring-interval",),
        ("-ds", "--dequeue-strategy"),
    ):
        worker.add_argument(*flags, help=argparse.SUPPRESS)
    worker.add_argument("--disable-job-desc-logging", action="store_true", help=argparse.SUPPRESS)
    worker.set_defaults(run=run_worker)


def _add_info(commands: Any) -> None:
    info = commands.add_parser("info", help="print queue counts and workers")
    info.add_argument("queues", nargs="*", metavar="QUEUE")
    _common(info)
    info.add_argument("-i", "--interval", type=float, help="repeat every SECONDS until Ctrl-C")
    info.add_argument("-r", "--raw", action="store_true", help="print plain lines without bars")
    info.add_argument("-Q", "--only-queues", action="store_true", help="print queues only")
    info.add_argument("-W", "--only-workers", action="store_true", help="print workers only")
    info.add_argument("-R", "--by-queue", action="store_true", help="accepted for RQ compatibility")
    info.set_defaults(run=run_info)


def _add_requeue(commands: Any) -> None:
    requeue = commands.add_parser("requeue", help="requeue failed jobs")
    requeue.add_argument("job_ids", nargs="*", metavar="JOB_ID")
    _common(requeue)
    requeue.add_argument("--queue", default="default", help="queue of the jobs (default: default)")
    requeue.add_argument("-a", "--all", action="store_true", help="requeue every failed job")
    requeue.set_defaults(run=run_requeue)


def _add_empty(commands: Any) -> None:
    empty = commands.add_parser("empty", help="delete the waiting jobs of queues")
    empty.add_argument("queues", nargs="*", metavar="QUEUE")
    _common(empty)
    empty.add_argument("-a", "--all", action="store_true", help="empty every known queue")
    empty.set_defaults(run=run_empty)


# Commands


def run_worker(args: argparse.Namespace) -> int:
    settings = _settings_module(args)
    level = args.logging_level.upper()
    if args.verbose:
        level = "DEBUG"
    elif args.quiet:
        level = "WARNING"
    logging.basicConfig(level=level, format=args.log_format, datefmt=args.date_format)
    if args.pid:
        with open(args.pid, "w", encoding="utf-8") as pid_file:
            pid_file.write(str(os.getpid()))

    client = _client(args, settings, signing_key_env=args.signing_key_env)
    queues = args.queues or list(getattr(settings, "QUEUES", None) or ["default"])
    worker_class = args.worker_class
    if worker_class and worker_class not in _WORKER_CLASSES:
        logger.warning("worker class %s is not supported; using the threaded worker", worker_class)
    try:
        worker = Worker(
            queues,
            connection=client,
            name=args.name or getattr(settings, "NAME", None),
            default_result_ttl=args.results_ttl,
            exception_handlers=[_import_handler(path) for path in args.exception_handler],
            disable_default_exception_handler=args.disable_default_exception_handler,
            serializer=args.serializer,
            concurrency=args.concurrency,
            allowed_modules=args.allow_module,
            settings=RunnerSettings(),
        )
        return _guarded(client, lambda: _work(worker, args))
    except ConfigurationError as error:
        raise CommandError(str(error)) from error


def _work(worker: Worker, args: argparse.Namespace) -> int:
    worker.work(burst=args.burst, max_jobs=args.max_jobs, max_idle_time=args.max_idle_time)
    return EXIT_OK


def run_info(args: argparse.Namespace) -> int:
    client = _client(args, _settings_module(args))

    def show() -> int:
        store = RQStorage(client.storage)
        names = args.queues or client.queues()
        if not args.only_workers:
            for name in names:
                print(_queue_line(store, name, raw=args.raw))
            print(f"{len(names)} queues")
        if not args.only_queues:
            processes = client.processes()
            for process in processes:
                queues = ",".join(process.queues)
                print(f"{process.host}.{process.pid} {process.id}: busy {process.busy} {queues}")
            print(f"{len(processes)} workers")
        return EXIT_OK

    if args.interval is None:
        return _guarded(client, show)
    while True:
        _guarded(client, show)
        time.sleep(args.interval)


def _queue_line(store: RQStorage, name: str, *, raw: bool) -> str:
    counts = {
        registry: len(store.registry_ids(name, registry))
        for registry in ("started", "finished", "failed", "deferred", "scheduled")
    }
    queued = store.ready_count(name)
    detail = ", ".join(f"{count} {registry}" for registry, count in counts.items())
    if raw:
        return f"queue {name} {queued} ({detail})"
    return f"{name:<20} |{'█' * min(queued, 40)} {queued} ({detail})"


def run_requeue(args: argparse.Namespace) -> int:
    client = _client(args, _settings_module(args))
    if not args.all and not args.job_ids:
        raise CommandError("name JOB_IDs to requeue, or pass --all")

    def requeue() -> int:
        store = RQStorage(client.storage)
        ids = store.registry_ids(args.queue, "failed") if args.all else args.job_ids
        moved = sum(store.requeue(args.queue, job_id, at_front=False) for job_id in ids)
        print(f"Requeued {moved} of {len(ids)} failed jobs of queue {args.queue}")
        return EXIT_OK

    return _guarded(client, requeue)


def run_empty(args: argparse.Namespace) -> int:
    client = _client(args, _settings_module(args))
    if not args.all and not args.queues:
        raise CommandError("name QUEUEs to empty, or pass --all")

    def empty() -> int:
        names = client.queues() if args.all else args.queues
        for name in names:
            removed = Queue(name, connection=client).empty()
            print(f"{removed} jobs removed from {name} queue")
        return EXIT_OK

    return _guarded(client, empty)


# Helpers


def _settings_module(args: argparse.Namespace) -> Any:
    for path in [*args.path, "."]:
        full = os.path.abspath(path)
        if full not in sys.path:
            sys.path.insert(0, full)
    if not args.config:
        return None
    try:
        return importlib.import_module(args.config)
    except ImportError as error:
        raise CommandError(f"settings module {args.config!r} cannot be imported: {error}") from None


def _client(args: argparse.Namespace, settings: Any, signing_key_env: str | None = None) -> Client:
    url = args.url or getattr(settings, "REDIS_URL", None)
    if not url:
        raise CommandError("no Redis URL: pass --url redis://host:port/db or set RQ_REDIS_URL")
    client = connect(url, args.namespace, connect_timeout_s=10.0)
    if signing_key_env:
        key = os.environ.get(signing_key_env)
        if not key:
            raise CommandError(f"environment variable {signing_key_env} is not set or empty")
        try:
            client = Client(client.redis, namespace=args.namespace, signing_keys=[key])
        except ConfigurationError as error:
            raise CommandError(str(error)) from error
    return client


def _import_handler(path: str) -> ExceptionHandler:
    module_name, _, name = path.rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError) as error:
        raise CommandError(f"exception handler {path!r} not found: {error}") from None
    return handler  # type: ignore[no-any-return]


def _guarded(client: Client, action: Callable[[], int]) -> int:
    where = describe_connection(client.redis)
    try:
        return action()
    except (redis.ConnectionError, redis.TimeoutError, RedisUnavailableError) as error:
        raise CommandError(f"cannot reach Redis at {where}: {error}", EXIT_UNAVAILABLE) from error
    except redis.RedisError as error:
        raise CommandError(
            f"Redis at {where} returned an error: {error}", EXIT_UNAVAILABLE
        ) from error
    except OxanusError as error:
        raise CommandError(str(error)) from error
