"""HTTP servers started inside baked projects (`make serve`, `mlflow server`) for the tests."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tests.generated import ENV

# A team tracking server for a test, run from a project: one worker and no GenAI job runner,
# as `dslc ui` runs MLflow. With MLflow's defaults (four workers and a job runner) it took
# 12.5 s to answer on a quiet 2-core machine, this way 5.7 s.
MLFLOW_SERVER = "MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false .venv/bin/mlflow server --workers 1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def background(
    command: str,
    cwd: Path,
    url: str,
    log: Path,
    env: dict | None = None,
    timeout: float = 300,
) -> Iterator[None]:
    """Start a server, wait until `url` answers, and always stop it (whole process group).

    Its output goes to `log` (a pipe nobody reads would fill and stall the server).
    """
    with open(log, "wb") as output:
        process = subprocess.Popen(
            ["bash", "-c", command],
            cwd=cwd,
            env={**ENV, **(env or {})},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout
        while not _answers(url):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-3000:]
                raise AssertionError(f"`{command}` did not come up: {tail}")
            time.sleep(1)
        yield
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def post_json(url: str, payload: object) -> tuple[int, dict]:
    """POST a JSON body; the status and the decoded JSON answer, errors included."""
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
