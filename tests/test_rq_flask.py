"""The Flask example: a view enqueues through `oxanus_sync.rq`, and a worker process runs it."""

from __future__ import annotations

import sys

from examples.flask_rq.app import create_app
from tests.helpers import RunnerProcess


def test_flask_view_enqueues_and_worker_runs(redis_url: str, namespace: str) -> None:
    app = create_app(redis_url, namespace=namespace)
    web = app.test_client()

    response = web.post("/count", json={"text": "The cat and the hat. The end!"})
    assert response.status_code == 202
    job_id = response.get_json()["job_id"]
    assert web.get(f"/jobs/{job_id}").get_json()["status"] == "queued"

    worker = RunnerProcess(
        [
            sys.executable,
            "-m",
            "oxanus_sync",
            "rq",
            "worker",
            "words",
            "--burst",
            "--url",
            redis_url,
            "--namespace",
            namespace,
        ]
    )
    assert worker.wait(timeout_s=60) == 0, worker.output()

    body = web.get(f"/jobs/{job_id}").get_json()
    assert body["status"] == "finished"
    assert body["result"] == {"words": 7, "top": ["the", "cat", "and"]}


def test_flask_view_rejects_bad_input(redis_url: str, namespace: str) -> None:
    web = create_app(redis_url, namespace=namespace).test_client()

    assert web.post("/count", json={"words": 1}).status_code == 400
    assert web.get("/jobs/missing").status_code == 404
