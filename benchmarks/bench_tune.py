"""Benchmark: `make tune` with 2 workers against 1 on one study, and what tracking costs.

Run by hand from the repository root:

    uv run python benchmarks/bench_tune.py [--project PATH] [--trials 16]

With no `--project`, it bakes a project (classification, a random forest of 300 to 600
trees: single-threaded, a few seconds a trial) and runs `make setup` and `make data` in
it; a set-up project of yours works too (its `params.yaml` estimator is used, so choose a
single-threaded one with some work per trial). Every measurement gets a fresh study in a
store of its own (`MLFLOW_TRACKING_URI` set to a temporary SQLite file, `optuna.db`
beside it):

1. Trials per minute of `python -m <module>.tune --workers 1` and `--workers 2`: finished
   trials over the time from the first trial's start to the last one's end, as the
   study records them (process start-up and the final training are not trials; the
   second worker's start-up, while the first one sets up, is).
2. Tracking per trial: the same seeded search (the same trials, in the same order) with
   dslc's nested MLflow runs, and with `tracking.run` replaced by a stand-in that logs
   nothing (Optuna alone), alternating. Each trial is compared with the same trial of the
   other search (same parameters, same folds): the figure is the median of those paired
   ratios, which one trial slowed by other work on the machine cannot move much (a ratio
   of mean trial times, printed beside it, can).

Prints both ratios (bars: at least 1.6x; under 5%); always exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_LINK_MODE": "copy"}
for name in ("VIRTUAL_ENV", "MLFLOW_TRACKING_URI"):
    ENV.pop(name, None)

# Runs inside the project's environment: one search, its trial times as JSON on stdout.
SEARCH = r"""
import contextlib, json, sys, time
import optuna
from dslc import config, tracking
from filelock import FileLock
from {module} import tune

class Null:  # Optuna alone: the trial's run logs nothing
    id = ""
    def log_metrics(self, *a, **k): pass
    def set_tags(self, *a, **k): pass

@contextlib.contextmanager
def null_run(*a, **k):
    yield Null()

mode, trials, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
import warnings, yaml
warnings.filterwarnings("ignore")
optuna.logging.set_verbosity(optuna.logging.WARNING)
params = yaml.safe_load((config.project_root() / "params.yaml").read_text())
study, created = tune.open_study(name, params["tune"]["seed"])
parent = tune.parent_run(study, created, {{}})
if mode == "null":
    tune.tracking = type("T", (), {{"run": staticmethod(null_run),
                                    "client": staticmethod(tracking.client)}})
start = time.perf_counter()
tune.work(study, params, trials, parent, FileLock(config.project_root() / "models" / "tune.lock"))
wall = time.perf_counter() - start
done = [t for t in study.trials if t.state in tune.FINISHED]
spans = [(t.datetime_complete - t.datetime_start).total_seconds() for t in done]
print(json.dumps({{"wall": wall, "spans": {{t.number: s for t, s in zip(done, spans)}}}}))
"""


def sh(command: list[str], cwd: Path, env: dict | None = None) -> str:
    result = subprocess.run(
        command, cwd=cwd, env={**ENV, **(env or {})}, text=True, capture_output=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{(result.stdout + result.stderr)[-3000:]}")
    return result.stdout


def bake(folder: Path) -> Path:
    cookiecutter = Path(sys.executable).with_name("cookiecutter")
    sh([str(cookiecutter), "--no-input", str(ROOT), "-o", str(folder)], folder)
    project = folder / "my-ds-project"
    params = project / "params.yaml"
    text = params.read_text()
    text = text.replace("estimator: logistic_regression", "estimator: random_forest", 1)
    text = text.replace("n_estimators: {low: 50, high: 400}", "n_estimators: {low: 300, high: 600}")
    params.write_text(text)
    sh(["make", "setup", "data"], project)
    return project


def store(folder: Path) -> dict:
    folder.mkdir(parents=True)
    return {"MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}"}


def trials_per_minute(
    project: Path, module: str, workers: int, trials: int, folder: Path
) -> tuple[float, float]:
    env = store(folder)
    sh(
        [
            ".venv/bin/python",
            "-m",
            f"{module}.tune",
            "--trials",
            str(trials),
            "--workers",
            str(workers),
        ],
        project,
        env,
    )
    code = (
        "import optuna, json, sys; s = optuna.load_study(study_name=None, storage=sys.argv[1]);"
        "d = [t for t in s.trials if t.state.name in ('COMPLETE', 'PRUNED')];"
        "print(json.dumps([len(d), (max(t.datetime_complete for t in d)"
        " - min(t.datetime_start for t in d)).total_seconds(),"
        " sum(t.params.get('n_estimators', 1) * max(1, len(t.intermediate_values)) for t in d)]))"
    )
    storage = env["MLFLOW_TRACKING_URI"].replace("mlflow.db", "optuna.db")
    n, seconds, work = json.loads(sh([".venv/bin/python", "-c", code, storage], project))
    return 60 * n / seconds, 60 * work / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, help="a set-up project (default: bake one)")
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--tracking-trials", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=("workers", "tracking"), help="one measurement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-tune-") as tmp:
        folder = Path(tmp)
        project = args.project.resolve() if args.project else bake(folder)
        module = next(p.parent.name for p in (project / "src").glob("*/tune.py"))
        print(
            f"project {project}, {args.trials} trials per search ({args.tracking_trials} for "
            f"tracking), {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"
        )

        if args.only != "tracking":
            workers(project, module, args.trials, folder)
        if args.only != "workers":
            tracking(project, module, args.tracking_trials, args.repeats, folder)
    return 0


def workers(project: Path, module: str, trials: int, folder: Path) -> None:
    rates, work, loads = {}, {}, []
    for count in (1, 2):
        loads.append(os.getloadavg()[0])  # other work on the cores skews the ratio: say so
        rates[count], work[count] = trials_per_minute(
            project, module, count, trials, folder / f"w{count}"
        )
    loads.append(os.getloadavg()[0])
    # Two workers sample other trials than one (TPE sees different histories) and prune
    # others: their trials can cost more or less. Trees fitted per minute (n_estimators
    # times the folds a trial ran) compare the same work.
    print(
        f"trials per minute: 1 worker {rates[1]:.1f}, 2 workers {rates[2]:.1f}: "
        f"ratio {rates[2] / rates[1]:.2f}x (bar: >= 1.6x); trees fitted per minute: ratio "
        f"{work[2] / work[1]:.2f}x (load average before, between and after: "
        f"{', '.join(f'{load:.1f}' for load in loads)})"
    )


def tracking(project: Path, module: str, trials: int, repeats: int, folder: Path) -> None:
    means: dict[str, list[float]] = {"tracked": [], "null": []}
    ratios: list[float] = []  # a trial with tracking over the same trial without
    for repeat in range(repeats):
        spans: dict[str, dict[str, float]] = {}
        for mode in ("tracked", "null"):
            env = store(folder / f"{mode}{repeat}")
            out = sh(
                [
                    ".venv/bin/python",
                    "-c",
                    SEARCH.format(module=module),
                    mode,
                    str(trials),
                    f"bench-{mode}-{repeat}",
                ],
                project,
                env,
            )
            spans[mode] = json.loads(out.strip().splitlines()[-1])["spans"]
            means[mode].append(statistics.fmean(spans[mode].values()))
        paired = spans["tracked"].keys() & spans["null"].keys()
        ratios += [spans["tracked"][n] / spans["null"][n] for n in sorted(paired)]
    tracked, alone = statistics.median(means["tracked"]), statistics.median(means["null"])
    print(
        f"per trial: Optuna alone {alone * 1000:.0f} ms, with dslc's nested runs "
        f"{tracked * 1000:.0f} ms (medians of the searches' means: "
        f"{100 * (tracked / alone - 1):+.1f}%); tracking "
        f"{100 * (statistics.median(ratios) - 1):+.1f}%, the median of {len(ratios)} paired "
        f"trials (bar: < 5%; load average after: {os.getloadavg()[0]:.1f})"
    )


if __name__ == "__main__":
    sys.exit(main())
