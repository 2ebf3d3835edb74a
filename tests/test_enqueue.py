"""Enqueueing: ids, arguments, batches and the errors raised for invalid input."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
import redis

from oxanus_sync import (
    Client,
    ConfigurationError,
    Context,
    EnqueueError,
    Queue,
    QueueConfig,
    Runner,
    SerializationError,
    Worker,
)
from oxanus_sync.devserver import start_server
from oxanus_sync.storage.keys import QueueKeys
from oxanus_sync.storage.store import ENQUEUE_CHUNK
from tests.helpers import Recorder, build_config

QUEUE = Queue("default", QueueConfig(concurrency=8))


class Add(Worker):
    a: int
    b: int

    def process(self, ctx: Context[Recorder]) -> None:
        ctx.shared.add((ctx.meta.id, self.a, self.b))


class Echo(Worker):
    value: Any

    def process(self, ctx: Context[Recorder]) -> None:
        ctx.shared.add(self.value)


class Noop(Worker):
    number: int

    def process(self, ctx: Context[Any]) -> None:
        pass


@pytest.fixture
def client(redis_url: str, namespace: str) -> Iterator[Client]:
    client = Client.from_url(redis_url, namespace=namespace)
    yield client
    client.close()


def _ready_count(client: Client) -> int:
    return client.stats([QUEUE])[0].ready


def test_enqueue_returns_id_and_runs(client: Client) -> None:
    recorder = Recorder()

    job_id = client.enqueue(QUEUE, Add(a=2, b=3))
    Runner(build_config(client, [QUEUE], [Add]), context=recorder).drain(timeout_s=10)

    assert isinstance(job_id, str)
    assert job_id
    assert recorder.events() == [(job_id, 2, 3)]


def test_enqueue_ids_are_unique(client: Client) -> None:
    ids = [client.enqueue(QUEUE, Add(a=1, b=1)) for _ in range(50)]

    assert len(set(ids)) == 50


def test_enqueue_by_queue_name(client: Client) -> None:
    recorder = Recorder()

    job_id = client.enqueue(QUEUE.name, Add(a=4, b=5))
    Runner(build_config(client, [QUEUE], [Add]), context=recorder).drain(timeout_s=10)

    assert recorder.events() == [(job_id, 4, 5)]


def test_enqueue_many_returns_ids_in_order(client: Client) -> None:
    recorder = Recorder()
    jobs = [Add(a=i, b=0) for i in range(20)]

    ids = client.enqueue_many(QUEUE, jobs)
    Runner(build_config(client, [QUEUE], [Add]), context=recorder).drain(timeout_s=10)

    assert len(ids) == 20
    assert len(set(ids)) == 20
    ran = {job_id: a for job_id, a, _ in recorder.events()}
    assert [ran[job_id] for job_id in ids] == list(range(20))


def test_enqueue_many_runs_2500_jobs(client: Client) -> None:
    recorder = Recorder()
    count = 2500

    ids = client.enqueue_many(QUEUE, [Add(a=i, b=0) for i in range(count)])
    ready_after_enqueue = _ready_count(client)
    stats = Runner(build_config(client, [QUEUE], [Add]), context=recorder).drain(timeout_s=50)

    assert len(set(ids)) == count
    assert ready_after_enqueue == count
    assert stats.succeeded == count
    assert sorted(a for _, a, _ in recorder.events()) == list(range(count))


def test_enqueue_many_one_call_per_chunk(client: Client, redis_url: str, namespace: str) -> None:
    # MONITOR shows every EVALSHA that reaches the server. Enqueueing one job first loads the
    # script, so that no EVALSHA of the batch is rejected with NOSCRIPT and sent again.
    client.enqueue("warm-up", Noop(number=0))
    ready_key = QueueKeys.build(namespace, QUEUE.name).ready
    end_marker = f"{namespace}-end-of-batch"
    key_counts = []

    # The socket timeout bounds each read, should the end marker never arrive.
    with (
        redis.Redis.from_url(redis_url, socket_timeout=10) as monitored,
        monitored.monitor() as monitor,
    ):
        client.enqueue_many(QUEUE, [Noop(number=i) for i in range(2500)])
        client.redis.echo(end_marker)

        while True:
            command = monitor.next_command()["command"]
            if end_marker in command:
                break
            words = command.split(" ", 3)
            if words[0].upper() == "EVALSHA" and words[3].startswith(ready_key):
                key_counts.append(int(words[2]))

    # Three calls for 2,500 jobs. Jobs due now in a static queue, without unique keys, take
    # the short script, which passes only the ready list and names job hashes from the job
    # key prefix.
    assert ENQUEUE_CHUNK == 1000
    assert key_counts == [1, 1, 1]


def test_enqueue_many_empty_returns_empty(client: Client) -> None:
    assert client.enqueue_many(QUEUE, []) == []
    assert _ready_count(client) == 0


def test_non_ascii_args_round_trip(client: Client) -> None:
    recorder = Recorder()
    value = {
        "text": "héllo wörld, Привет, 日本語, emoji 🎉",
        "ключ": ["ß", "\u00a0", "\u200b", "𝄞"],
        "nested": {"名前": "値"},
    }

    client.enqueue(QUEUE, Echo(value=value))
    Runner(build_config(client, [QUEUE], [Echo]), context=recorder).drain(timeout_s=10)

    assert recorder.events() == [value]


def test_json_args_round_trip(client: Client) -> None:
    recorder = Recorder()
    value = {"int": 2**53, "float": 0.1, "bool": True, "none": None, "list": [1, [2, [3]]]}

    client.enqueue(QUEUE, Echo(value=value))
    Runner(build_config(client, [QUEUE], [Echo]), context=recorder).drain(timeout_s=10)

    assert recorder.events() == [value]


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(object(), id="object"),
        pytest.param(math.nan, id="nan"),
        pytest.param({1: "integer key"}, id="integer-key"),
        pytest.param({"inner": [complex(1, 2)]}, id="nested-complex"),
    ],
)
def test_unserializable_arg_raises(client: Client, value: object) -> None:
    with pytest.raises(SerializationError) as raised:
        client.enqueue(QUEUE, Echo(value=value))

    assert "'value'" in str(raised.value)
    assert Echo.job_name in str(raised.value)
    assert _ready_count(client) == 0


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(b"\x00\xff binary", id="bytes"),
        pytest.param({"inner": b"nested"}, id="nested-bytes"),
        pytest.param((1, (2, "three")), id="tuple"),
        pytest.param({1, 2}, id="set"),
        pytest.param(frozenset({"a"}), id="frozenset"),
        pytest.param(datetime(2024, 1, 1, 12, 30, tzinfo=UTC), id="aware-datetime"),
        pytest.param(datetime(2024, 1, 1, 12, 30), id="naive-datetime"),
        pytest.param(datetime(2024, 1, 1).date(), id="date"),
        pytest.param(Decimal("1.10"), id="decimal"),
        pytest.param(UUID("12345678-1234-5678-1234-567812345678"), id="uuid"),
        pytest.param({"$oxanus": "bytes", "v": "not a tag"}, id="dict-with-tag-key"),
    ],
)
def test_extended_arg_round_trips(client: Client, value: object) -> None:
    recorder = Recorder()
    client.enqueue(QUEUE, Echo(value=value))

    Runner(build_config(client, [QUEUE], [Echo]), context=recorder).drain(timeout_s=10)

    [received] = recorder.events()
    assert received == value
    assert type(received) is type(value)


def test_lone_surrogate_arg_raises(client: Client) -> None:
    with pytest.raises(SerializationError) as raised:
        client.enqueue(QUEUE, Echo(value="file-\udcff.txt"))

    assert "'value'" in str(raised.value)
    assert _ready_count(client) == 0


def test_enqueue_many_bad_arg_enqueues_nothing(client: Client) -> None:
    jobs = [Echo(value=1), Echo(value=object()), Echo(value=3)]

    with pytest.raises(SerializationError):
        client.enqueue_many(QUEUE, jobs)

    assert _ready_count(client) == 0


@pytest.mark.parametrize(
    "job",
    [
        pytest.param({"a": 1, "b": 2}, id="dict"),
        pytest.param(Add, id="class"),
        pytest.param(None, id="none"),
    ],
)
def test_enqueue_non_worker_raises(client: Client, job: Any) -> None:
    with pytest.raises(EnqueueError) as raised:
        client.enqueue(QUEUE, job)

    assert "Worker" in str(raised.value)


def test_enqueue_many_non_worker_enqueues_nothing(client: Client) -> None:
    jobs: list[Any] = [Add(a=1, b=2), "not a job"]

    with pytest.raises(EnqueueError):
        client.enqueue_many(QUEUE, jobs)

    assert _ready_count(client) == 0


@pytest.mark.parametrize("name", ["", "has space", "{braces}", "tab\t", "x" * 201, "é"])
def test_invalid_queue_name_raises(client: Client, name: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        client.enqueue(name, Add(a=1, b=2))

    assert "invalid queue name" in str(raised.value)


@pytest.mark.parametrize("name", ["", "has space", "{braces}"])
def test_queue_declaration_invalid_name_raises(name: str) -> None:
    with pytest.raises(ConfigurationError):
        Queue(name)


def test_decode_responses_client_raises(redis_url: str) -> None:
    connection = redis.Redis.from_url(redis_url, decode_responses=True)

    with pytest.raises(ConfigurationError) as raised:
        Client(connection)
    connection.close()

    assert "decode_responses" in str(raised.value)


def test_non_redis_connection_raises() -> None:
    with pytest.raises(ConfigurationError) as raised:
        Client("redis://localhost:6379/0")  # type: ignore[arg-type]

    assert "from_url" in str(raised.value)


def test_invalid_url_raises() -> None:
    with pytest.raises(ConfigurationError) as raised:
        Client.from_url("http://localhost:6379/0")

    assert "invalid Redis URL" in str(raised.value)


@pytest.mark.timeout(30)
def test_rejected_bulk_reports_stored_ids() -> None:
    with start_server() as server:
        connection = redis.Redis.from_url(server.url)
        used = int(connection.info("memory")["used_memory"])
        connection.config_set("maxmemory", used + 2 * 1024 * 1024)
        client = Client(connection, namespace="bulk")
        jobs = [Echo(value="x" * 1000) for _ in range(5000)]

        with pytest.raises(EnqueueError) as raised:
            client.enqueue_many(QUEUE, jobs)

        stored = raised.value.enqueued_ids
        ready_key = QueueKeys.build("bulk", QUEUE.name).ready
        ready = [job_id.decode() for job_id in connection.lrange(ready_key, 0, -1)]
        assert "OutOfMemoryError" in str(raised.value)
        assert 0 < len(stored) < len(jobs)
        assert sorted(stored) == sorted(ready)
        connection.close()


@pytest.mark.timeout(60)
def test_enqueue_many_outlasts_socket_timeout(redis_url: str, namespace: str) -> None:
    # Redis runs the chunks one after another while the client is still sending, so sending
    # all of them takes longer than this socket timeout. Each write must fit in it, not all.
    connection = redis.Redis.from_url(redis_url, socket_timeout=0.25)
    client = Client(connection, namespace=namespace)
    count = 100 * ENQUEUE_CHUNK

    ids = client.enqueue_many(QUEUE, [Noop(number=i) for i in range(count)])

    assert len(ids) == count
    assert client.stats([QUEUE])[0].ready == count
    connection.close()
