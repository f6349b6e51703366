"""Benchmark: logging to the team's MLflow server on PostgreSQL, through dslc against plain MLflow.

Run by hand from the repository root (needs Debian's `postgresql` package, as the
template's tests do):

    uv run --project helpers --with 'psycopg[binary]' python benchmarks/bench_server_logging.py

It starts its own throwaway PostgreSQL cluster (helpers/tests/pgcluster.py, fsync on, as a
real server has) and an `mlflow server` on it with proxied artifacts, as
`make tracking-server` runs it. One run logs 1,000 steps of one metric key, two ways:

    (a) dslc:  ``with tracking.run()`` + ``run.log_metric`` per step (dslc batches them)
    (b) plain: ``mlflow.start_run`` + ``mlflow.log_metric`` per step (one request each)

by 1 client, then by 8 at once (separate processes, started together once they have
imported everything; `--clients` changes the counts). Each timing covers a whole round:
from the start signal until every client's run has ended. Every way gets an untimed
warm-up round, the ways alternate within each repetition, medians are compared, and
every step of every timed run is counted in PostgreSQL afterwards.

Prints steps per second of each way and the ratio plain / dslc; always exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
N_STEPS = 1000
WAYS = ("dslc", "plain")


# --- a client: one process, told when to start -------------------------------------------


def client(way: str, steps: int) -> None:
    """Import everything, say "ready", wait for "go", log one run, print its id and time."""
    import mlflow
    from dslc import tracking

    uri = os.environ["MLFLOW_TRACKING_URI"]
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.MlflowClient(uri).get_experiment_by_name("bench-plain")
    print("ready", flush=True)
    sys.stdin.readline()
    started = time.perf_counter()
    if way == "dslc":
        with tracking.run() as run:
            run_id = run.id
            for step in range(steps):
                run.log_metric("loss", 1.0 / (step + 1), step=step)
    else:
        with mlflow.start_run(experiment_id=experiment.experiment_id) as plain:
            run_id = plain.info.run_id
            for step in range(steps):
                mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    print(json.dumps({"run_id": run_id, "seconds": time.perf_counter() - started}), flush=True)


# --- the benchmark -----------------------------------------------------------------------


def round_of(way: str, clients: int, steps: int, env: dict[str, str]) -> tuple[float, list[str]]:
    """Start `clients` processes, wait until all are ready, time them from "go" to done."""
    processes = [
        subprocess.Popen(
            [sys.executable, __file__, "--client", way, "--steps", str(steps)],
            env=env,
            cwd=env["DSLC_PROJECT_ROOT"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(clients)
    ]
    for process in processes:
        line = process.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"a {way} client did not start: {line!r}")
    started = time.perf_counter()
    for process in processes:
        process.stdin.write("go\n")
        process.stdin.flush()
    # The last line: MLflow prints "View run ... at: <url>" lines before it.
    outputs = [process.communicate(timeout=1800)[0] for process in processes]
    results = [json.loads(output.splitlines()[-1]) for output in outputs]
    elapsed = time.perf_counter() - started
    if any(process.returncode for process in processes):
        raise RuntimeError(f"a {way} client failed")
    return elapsed, [result["run_id"] for result in results]


def wait_until_up(url: str, server: subprocess.Popen, log: Path, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text()[-2000:]
                raise RuntimeError(f"mlflow server did not start: {tail}") from None
            time.sleep(0.25)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds per way (default 3)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--client", choices=WAYS, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=N_STEPS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client(args.client, args.steps)
        return 0

    sys.path.insert(0, str(ROOT / "helpers" / "tests"))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import mlflow
    from bench_tracking import make_project
    from pgcluster import Unavailable, free_port, throwaway_cluster

    try:
        with throwaway_cluster(durable=True) as cluster:
            return run_with(cluster, args, mlflow, make_project, free_port)
    except Unavailable as exc:
        print(f"cannot run: {exc}")
        return 0


def run_with(cluster, args: argparse.Namespace, mlflow, make_project, free_port) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        database = cluster.create_database("mlflow", "mlflow", "bench-password")
        folder = Path(tmp)
        (folder / "project").mkdir()
        make_project(folder / "project")
        port = free_port()
        log = folder / "server.log"
        server_env = {**os.environ, "MLFLOW_BACKEND_STORE_URI": database}
        command = [
            sys.executable, "-m", "mlflow", "server", "--serve-artifacts",
            "--artifacts-destination", str(folder / "artifacts"),
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers),
        ]  # fmt: skip
        t0 = time.perf_counter()
        with open(log, "wb") as output:
            server = subprocess.Popen(command, env=server_env, stdout=output, stderr=output)
        try:
            uri = f"http://127.0.0.1:{port}"
            wait_until_up(f"{uri}/health", server, log)
            print(
                f"mlflow {mlflow.__version__} server on PostgreSQL ({args.workers} workers): "
                f"answered {time.perf_counter() - t0:.1f} s after start (first start: migrations)"
            )
            env = {
                **os.environ,
                "MLFLOW_TRACKING_URI": uri,
                "DSLC_PROJECT_ROOT": str(folder / "project"),
            }
            mlflow.MlflowClient(uri).create_experiment("bench-plain")
            for clients in args.clients:
                measure(clients, args.repeat, env, cluster)
        finally:
            server.terminate()
            server.wait(timeout=60)
    return 0


def measure(clients: int, repeat: int, env: dict[str, str], cluster) -> None:
    for way in WAYS:  # warm-up: server-side caches, the experiment dslc creates
        round_of(way, clients, 10, env)
    times: dict[str, list[float]] = {way: [] for way in WAYS}
    run_ids: list[str] = []
    for _ in range(max(1, repeat)):
        for way in WAYS:
            elapsed, ids = round_of(way, clients, N_STEPS, env)
            times[way].append(elapsed)
            run_ids += ids
    stored = cluster.psql(
        "SELECT count(*) FROM metrics WHERE key = 'loss' AND run_uuid IN ("
        + ",".join(f"'{run_id}'" for run_id in run_ids)
        + ")",
        database="mlflow",
    )
    expected = len(run_ids) * N_STEPS
    print(f"\n{clients} client(s) at once, {N_STEPS} steps each; rounds timed from start to end")
    print(f"{'way':<6} {'median s':>9} {'steps/s':>9}   all rounds (s)")
    median = {way: statistics.median(ts) for way, ts in times.items()}
    for way, ts in times.items():
        rounds = " ".join(f"{t:.2f}" for t in ts)
        print(f"{way:<6} {median[way]:>9.2f} {clients * N_STEPS / median[way]:>9.0f}   {rounds}")
    print(f"plain / dslc = {median['plain'] / median['dslc']:.1f}x")
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"steps stored in PostgreSQL: {int(stored)} of {expected}")


if __name__ == "__main__":
    raise SystemExit(main())
