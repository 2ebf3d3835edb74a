"""A Flask app that enqueues jobs through `oxanus_sync.rq`, as an RQ app would through `rq`.

Run it and a worker from the repository root, with Redis at REDIS_URL:

    flask --app examples.flask_rq.app run
    oxanus-sync rq worker words --url "$REDIS_URL"

Then `curl -X POST localhost:5000/count -H 'Content-Type: application/json' -d '{"text": "a b a"}'`
returns a job id, and `curl localhost:5000/jobs/JOB_ID` its status and result.
"""

from __future__ import annotations

import os

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue
from redis import Redis

from examples.flask_rq.tasks import count_words
from oxanus_sync import Client
from oxanus_sync.rq import Queue
from oxanus_sync.rq.exceptions import NoSuchJobError
from oxanus_sync.rq.job import Job


def create_app(redis_url: str | None = None, namespace: str = "oxanus") -> Flask:
    """Build the app; `redis_url` defaults to REDIS_URL."""
    url = redis_url or os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    client = Client(Redis.from_url(url), namespace=namespace)
    queue = Queue("words", connection=client)
    app = Flask(__name__)

    @app.post("/count")
    def enqueue_count() -> ResponseReturnValue:
        body = request.get_json(silent=True) or {}
        text = body.get("text")
        if not isinstance(text, str):
            return jsonify(error='send JSON {"text": "..."}'), 400
        job = queue.enqueue(count_words, text, result_ttl=600)
        return jsonify(job_id=job.id), 202

    @app.get("/jobs/<job_id>")
    def job_status(job_id: str) -> ResponseReturnValue:
        try:
            job = Job.fetch(job_id, connection=client)
        except NoSuchJobError:
            return jsonify(error=f"no job {job_id}"), 404
        return jsonify(status=job.get_status().value, result=job.return_value())

    return app
