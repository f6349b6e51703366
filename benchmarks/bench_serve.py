"""Benchmark: one row over HTTP (`mlflow models serve`) against `model.predict` in process,
and the model served from its own environment (`--env-manager uv`) against it served locally.

Run by hand from the repository root:

    uv run --project helpers python benchmarks/bench_serve.py [--requests N]

The model is the generated project's example in miniature (raw iris columns -> features
-> scaler -> logistic regression), logged, registered and promoted through dslc in a
throwaway project. The same ``models:/bench@champion`` is then

    (a) loaded in this process with ``mlflow.pyfunc.load_model`` and asked to predict one
        row (a one-row DataFrame) N times: the baseline;
    (b) served by ``mlflow models serve --env-manager local`` on loopback, and sent the
        same row N times, one request after the other, over one kept-alive connection
        (``dataframe_split`` JSON);
    (d) served by ``dslc serve``, as ``make serve`` does: (b) behind dslc's guard, which
        checks each JSON body and forwards it;
    (c) served by ``mlflow models serve --env-manager uv``: MLflow first builds the model's
        own environment from its requirements (and the code it carries), as a server
        elsewhere does; asked like (b), one request to (b) and one to (c) in turn, so
        that the machine's load weighs on both alike.

All get warm-up calls first. Prints p50 and p99 latency of each, their ratios, and the
local server's requests per second (one client, sequential). Bars: ``make serve``'s HTTP
p50 (d) within 5x of the in-process p50; the model's own environment within 1.2x of the
local one (p50). Also printed: what the guard adds, (d) against (b).
Always exits 0. ``--env-manager uv`` needs uv on PATH and a package index (or uv's cache).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _model import RAW_COLUMNS, iris, make_project, train_champion

BAR = 5.0
OWN_ENVIRONMENT_BAR = 1.2
WARMUP = 50


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def in_process(uri: str, row, n: int) -> list[float]:
    import mlflow

    model = mlflow.pyfunc.load_model(uri)
    for _ in range(WARMUP):
        model.predict(row)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        model.predict(row)
        times.append(time.perf_counter() - start)
    return times


def start_server(
    uri: str, port: int, root: Path, log: Path, env_manager: str = "local"
) -> subprocess.Popen:
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        # A model environment built afresh for this run, inside its throwaway folder.
        "MLFLOW_ENV_ROOT": str(root / "envs"),
    }
    env.pop("PYTHONPATH", None)  # the model's code comes with the model
    command = [sys.executable, "-m", "mlflow", "models", "serve", "--model-uri", uri]
    command += ["--host", "127.0.0.1", "--port", str(port), "--env-manager", env_manager]
    with open(log, "wb") as output:
        return subprocess.Popen(
            command, cwd=root, env=env, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def start_guarded(port: int, root: Path, log: Path) -> subprocess.Popen:
    """``dslc serve`` (MLflow's server behind dslc's guard) on the project's champion."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}"}
    env.pop("PYTHONPATH", None)
    command = [sys.executable, "-m", "dslc.cli", "serve", "--port", str(port)]
    with open(log, "wb") as output:
        return subprocess.Popen(
            command, cwd=root, env=env, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def wait_until_up(port: int, process: subprocess.Popen, log: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server stopped: {log.read_text()[-2000:]}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/ping")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the server did not come up in {timeout:.0f} s")


def asker(port: int, body: bytes, expected: list) -> Callable[[], float]:
    """One timed request over a kept-alive connection; checks the answer."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/json"}

    def ask() -> float:
        start = time.perf_counter()
        connection.request("POST", "/invocations", body=body, headers=headers)
        response = connection.getresponse()
        answer = json.loads(response.read())
        took = time.perf_counter() - start
        if response.status != 200 or answer["predictions"] != expected:
            raise SystemExit(f"unexpected answer {response.status}: {answer}")
        return took

    return ask


def over_http(asks: list[Callable[[], float]], n: int) -> tuple[list[list[float]], float]:
    """n timed requests to each server, in turn; the times, and requests per second."""
    for _ in range(WARMUP):
        for ask in asks:
            ask()
    times: list[list[float]] = [[] for _ in asks]
    started = time.perf_counter()
    for _ in range(n):
        for ask, took in zip(asks, times, strict=True):
            took.append(ask())
    return times, n * len(asks) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="timed calls of each kind")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-serve-") as folder:
        root = Path(folder)
        make_project(root)
        os.chdir(root)
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        uri = train_champion(root)
        row = iris()[0].head(1)
        expected = ["setosa"]

        local = in_process(uri, row, args.requests)
        split = {"columns": RAW_COLUMNS, "data": row.to_numpy().tolist()}
        body = json.dumps({"dataframe_split": split}).encode()
        servers, asks = [], []
        try:
            for manager in ("local", "uv", "guarded"):
                port, log = free_port(), root / f"serve-{manager}.log"
                if manager == "guarded":
                    servers.append(start_guarded(port, root, log))
                else:
                    servers.append(start_server(uri, port, root, log, manager))
                # The first start under uv builds the model's environment: minutes, not ms.
                wait_until_up(port, servers[-1], log, timeout=900)
                asks.append(asker(port, body, expected))
            (remote, own, guarded), per_second = over_http(asks, args.requests)
        finally:
            for server in servers:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(timeout=30)

    ms = 1000
    rows = [
        ("in-process model.predict", local),
        ("HTTP, mlflow models serve", remote),
        ("HTTP, --env-manager uv", own),
        ("HTTP, dslc serve (make serve)", guarded),
    ]
    print(f"{args.requests} single-row predictions each, after {WARMUP} warm-up calls")
    for label, times in rows:
        print(
            f"  {label:28s} p50 {statistics.median(times) * ms:7.2f} ms"
            f"   p99 {percentile(times, 99) * ms:7.2f} ms"
        )
    p50 = statistics.median(guarded) / statistics.median(local)
    p99 = percentile(guarded, 99) / percentile(local, 99)
    print(f"  HTTP requests per second (one client, sequential, all servers): {per_second:.0f}")
    print(f"  in-process calls per second: {len(local) / sum(local):.0f}")
    verdict = "PASS" if p50 <= BAR else "FAIL"
    print(f"make serve / in-process: p50 {p50:.2f}x (bar <= {BAR:.0f}x: {verdict}), p99 {p99:.2f}x")
    guard_p50 = statistics.median(guarded) / statistics.median(remote)
    print(f"dslc serve's guard / mlflow models serve alone: p50 {guard_p50:.2f}x")
    own_p50 = statistics.median(own) / statistics.median(remote)
    own_p99 = percentile(own, 99) / percentile(remote, 99)
    verdict = "PASS" if own_p50 <= OWN_ENVIRONMENT_BAR else "FAIL"
    print(
        f"--env-manager uv / local: p50 {own_p50:.2f}x (bar <= {OWN_ENVIRONMENT_BAR}x: "
        f"{verdict}), p99 {own_p99:.2f}x"
    )


if __name__ == "__main__":
    main()
