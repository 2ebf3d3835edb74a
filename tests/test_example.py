"""Run examples/index_stdlib.py as a subprocess against the test server and check its output."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import redis

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = REPO_ROOT / "examples" / "index_stdlib.py"

EXAMPLE_TIMEOUT_SECONDS = 120
"""Maximum run time of the example process. Its drain timeout is 20 s shorter, so that the
example reports a drain timeout itself before the process is killed."""

pytestmark = pytest.mark.timeout(EXAMPLE_TIMEOUT_SECONDS + 30)


@pytest.fixture(scope="module")
def example_run(redis_url: str) -> subprocess.CompletedProcess[str]:
    """Run the example once for the whole module, with the session's Redis server."""
    env = {**os.environ, "REDIS_URL": redis_url, "PYTHONPATH": str(REPO_ROOT)}
    drain_timeout = str(EXAMPLE_TIMEOUT_SECONDS - 20)
    return subprocess.run(
        [sys.executable, str(EXAMPLE), "--timeout", drain_timeout],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=EXAMPLE_TIMEOUT_SECONDS,
        check=False,
    )


def _count(pattern: str, output: str) -> int:
    match = re.search(pattern, output)
    assert match is not None, f"no line matches {pattern!r} in the output:\n{output}"
    return int(match.group(1))


def test_example_exits_zero(example_run: subprocess.CompletedProcess[str]) -> None:
    assert example_run.returncode == 0, example_run.stdout + example_run.stderr


def test_example_uses_redis_url(example_run: subprocess.CompletedProcess[str]) -> None:
    assert "Redis: the server at REDIS_URL" in example_run.stdout


def test_example_processes_jobs(example_run: subprocess.CompletedProcess[str]) -> None:
    succeeded = _count(r"(\d+) succeeded", example_run.stdout)
    assert succeeded > 100


def test_example_retries_job(example_run: subprocess.CompletedProcess[str]) -> None:
    retries = _count(r"(\d+) retries", example_run.stdout)
    assert retries >= 1


def test_example_reports_dead_job(example_run: subprocess.CompletedProcess[str]) -> None:
    dead = _count(r"(\d+) dead\b", example_run.stdout)
    assert dead == 1
    assert "Dead job in queue index:" in example_run.stdout
    assert "FileNotFoundError" in example_run.stdout


def test_example_reports_top_words(example_run: subprocess.CompletedProcess[str]) -> None:
    assert "Top 10 words in" in example_run.stdout
    # The standard library of CPython 3.11 contains "self" about 220,000 times, five times
    # as often as the next word.
    assert re.search(r"^\s+\d+\. self\s+\d+$", example_run.stdout, re.MULTILINE)


def test_example_deletes_keys(
    example_run: subprocess.CompletedProcess[str], redis_client: redis.Redis
) -> None:
    match = re.search(r"^Namespace: (example-[0-9a-f]+)", example_run.stdout, re.MULTILINE)
    assert match is not None, example_run.stdout
    leftover = list(redis_client.scan_iter(match=f"{match.group(1)}:*"))
    assert leftover == []
