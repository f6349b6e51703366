"""Benchmark: one row over HTTP (`mlflow models serve`) against `model.predict` in process.

Run by hand from the repository root:

    uv run --project helpers python benchmarks/bench_serve.py [--requests N]

The model is the generated project's example in miniature (raw iris columns -> features
-> scaler -> logistic regression), logged, registered and promoted through dslc in a
throwaway project. The same ``models:/bench@champion`` is then

    (a) loaded in this process with ``mlflow.pyfunc.load_model`` and asked to predict one
        row (a one-row DataFrame) N times: the baseline;
    (b) served by ``mlflow models serve --env-manager local`` (as ``make serve`` does) on
        loopback, and sent the same row N times, one request after the other, over one
        kept-alive connection (``dataframe_split`` JSON).

Both get warm-up calls first. Prints p50 and p99 latency of each, their ratios, and the
server's requests per second (one client, sequential). Bar: HTTP p50 within 5x of the
in-process p50. Always exits 0.
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
from pathlib import Path

from _model import RAW_COLUMNS, iris, make_project, train_champion

BAR = 5.0
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


def start_server(uri: str, port: int, root: Path, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        # The server imports the model's feature function, as a project's server imports
        # the project's installed package.
        "PYTHONPATH": str(Path(__file__).parent),
    }
    command = [sys.executable, "-m", "mlflow", "models", "serve", "--model-uri", uri]
    command += ["--host", "127.0.0.1", "--port", str(port), "--env-manager", "local"]
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


def over_http(port: int, body: bytes, expected: list, n: int) -> tuple[list[float], float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/json"}

    def ask() -> None:
        connection.request("POST", "/invocations", body=body, headers=headers)
        response = connection.getresponse()
        answer = json.loads(response.read())
        if response.status != 200 or answer["predictions"] != expected:
            raise SystemExit(f"unexpected answer {response.status}: {answer}")

    for _ in range(WARMUP):
        ask()
    times = []
    started = time.perf_counter()
    for _ in range(n):
        start = time.perf_counter()
        ask()
        times.append(time.perf_counter() - start)
    return times, n / (time.perf_counter() - started)


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
        port, log = free_port(), root / "serve.log"
        server = start_server(uri, port, root, log)
        try:
            wait_until_up(port, server, log)
            split = {"columns": RAW_COLUMNS, "data": row.to_numpy().tolist()}
            body = json.dumps({"dataframe_split": split}).encode()
            remote, per_second = over_http(port, body, expected, args.requests)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)

    ms = 1000
    rows = [
        ("in-process model.predict", local),
        ("HTTP, mlflow models serve", remote),
    ]
    print(f"{args.requests} single-row predictions each, after {WARMUP} warm-up calls")
    for label, times in rows:
        print(
            f"  {label:28s} p50 {statistics.median(times) * ms:7.2f} ms"
            f"   p99 {percentile(times, 99) * ms:7.2f} ms"
        )
    p50 = statistics.median(remote) / statistics.median(local)
    p99 = percentile(remote, 99) / percentile(local, 99)
    print(f"  HTTP requests per second (one client, sequential): {per_second:.0f}")
    print(f"  in-process calls per second: {len(local) / sum(local):.0f}")
    verdict = "PASS" if p50 <= BAR else "FAIL"
    print(f"HTTP / in-process: p50 {p50:.2f}x (bar <= {BAR:.0f}x: {verdict}), p99 {p99:.2f}x")


if __name__ == "__main__":
    main()
