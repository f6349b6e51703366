"""Benchmark: logging a run through dslc.tracking against plain MLflow on SQLite.

Run by hand from the repository root:

    uv run --project helpers python benchmarks/bench_tracking.py [--repeat N]

One run = 50 params and 1,000 metric values (one key, "loss", over steps 0..999),
logged three ways, each on its own fresh SQLite store in a temporary project:

    (a) dslc:      ``with tracking.run(params=...)`` + ``run.log_metric`` per step
    (b) plain:     ``mlflow.start_run`` + ``mlflow.log_param`` / ``mlflow.log_metric`` loops
    (c) log_batch: ``mlflow.start_run`` + one ``MlflowClient.log_batch`` (MLflow's fastest)

Each timing covers the whole run: start, logging, end. Store creation and migration are
excluded (every store is migrated before timing). Every way gets one untimed warm-up run,
the ways are interleaved within each repetition, and medians are compared.

Bars (ARCHITECTURE.md, "Bars"): plain / dslc >= 5x; dslc / log_batch <= 1.5x.
Prints the figures and whether each bar passes; always exits 0.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

N_PARAMS = 50
N_STEPS = 1000
PLAIN_BAR = 5.0
BATCH_BAR = 1.5
PARAMS = {f"param_{i:02d}": i * 0.5 for i in range(N_PARAMS)}


def make_project(root: Path) -> None:
    """A minimal dslc project; a git repo when git exists, as real projects are, ignoring
    the stores and artifacts as a generated project's .gitignore does (else every run would
    record the stores' bytes as uncommitted changes: dslc/changes.patch)."""
    (root / "pyproject.toml").write_text(
        '[project]\nname = "bench"\nversion = "0"\n\n[tool.dslc]\n', encoding="utf-8"
    )
    (root / ".gitignore").write_text("*.db\n*.db-*\nmlartifacts/\nmlruns/\n.dslc/\n")
    if shutil.which("git"):
        author = ["-c", "user.email=b@example.com", "-c", "user.name=b"]
        for args in (
            ["init", "-q"],
            [*author, "add", "pyproject.toml", ".gitignore"],
            [*author, "commit", "-qm", "init"],
        ):
            subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def sqlite_uri(path: Path) -> str:
    return f"sqlite:///{path.as_posix()}"


def prepare_stores(root: Path) -> dict[str, str]:
    """Migrate one store through dslc (untimed), copy it for the other two ways."""
    from dslc import tracking

    t0 = time.perf_counter()
    tracking.ensure_store(root)
    print(f"store creation + migration (excluded from timings): {time.perf_counter() - t0:.1f} s")
    os.environ.pop("MLFLOW_TRACKING_URI", None)  # mlflow exported it; dslc must resolve anew
    uris = {"dslc": sqlite_uri(root / "mlflow.db")}
    for way in ("plain", "log_batch"):
        shutil.copyfile(root / "mlflow.db", root / f"{way}.db")
        uris[way] = sqlite_uri(root / f"{way}.db")
    return uris


def experiment_for(uri: str) -> str:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("bench-plain")
    return exp.experiment_id if exp else client.create_experiment("bench-plain")


def run_dslc(_uri: str, n_steps: int) -> None:
    from dslc import tracking

    os.environ.pop("MLFLOW_TRACKING_URI", None)  # the project's own default store
    with tracking.run(params=PARAMS) as run:
        for step in range(n_steps):
            run.log_metric("loss", 1.0 / (step + 1), step=step)


def run_plain(uri: str, n_steps: int) -> None:
    import mlflow

    mlflow.set_tracking_uri(uri)
    with mlflow.start_run(experiment_id=experiment_for(uri)):
        for key, value in PARAMS.items():
            mlflow.log_param(key, value)
        for step in range(n_steps):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)


def run_log_batch(uri: str, n_steps: int) -> None:
    import mlflow
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    with mlflow.start_run(experiment_id=experiment_for(uri)) as run:
        now = int(time.time() * 1000)
        client.log_batch(
            run.info.run_id,
            params=[Param(k, str(v)) for k, v in PARAMS.items()],
            metrics=[Metric("loss", 1.0 / (s + 1), now, s) for s in range(n_steps)],
        )


WAYS: dict[str, Callable[[str, int], None]] = {
    "dslc": run_dslc,
    "plain": run_plain,
    "log_batch": run_log_batch,
}


def timed(fn: Callable[[str, int], None], uri: str) -> float:
    t0 = time.perf_counter()
    fn(uri, N_STEPS)
    return time.perf_counter() - t0


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per way (default 3)")
    args = parser.parse_args()

    import mlflow  # imported before timing: import cost is not what is measured

    with tempfile.TemporaryDirectory(prefix="dslc-bench-") as tmp:
        root = Path(tmp)
        make_project(root)
        os.chdir(root)
        os.environ.pop("DSLC_PROJECT_ROOT", None)
        uris = prepare_stores(root)
        for way, fn in WAYS.items():  # warm-up: lazy imports, SQL statement caches
            fn(uris[way], 10)
        times: dict[str, list[float]] = {way: [] for way in WAYS}
        for _ in range(max(1, args.repeat)):
            for way, fn in WAYS.items():
                times[way].append(timed(fn, uris[way]))
        mlflow.set_tracking_uri(None)

    print(f"mlflow {mlflow.__version__}; {N_PARAMS} params + {N_STEPS} steps of 1 metric key")
    print(f"{'way':<10} {'median s':>9} {'min s':>7}   all runs (s)")
    med = {way: statistics.median(ts) for way, ts in times.items()}
    for way, ts in times.items():
        runs = " ".join(f"{t:.3f}" for t in ts)
        print(f"{way:<10} {med[way]:>9.3f} {min(ts):>7.3f}   {runs}")
    speedup = med["plain"] / med["dslc"]
    overhead = med["dslc"] / med["log_batch"]
    print(
        f"plain / dslc     = {speedup:6.1f}x  (bar >= {PLAIN_BAR:g}x)  "
        f"{verdict(speedup >= PLAIN_BAR)}"
    )
    print(
        f"dslc / log_batch = {overhead:6.2f}x  (bar <= {BATCH_BAR:g}x)  "
        f"{verdict(overhead <= BATCH_BAR)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
