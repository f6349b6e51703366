"""Search the estimator's parameters with Optuna over the space in params.yaml (``tune``).

``make tune TRIALS=n WORKERS=k`` joins the study of the estimator that params.yaml names,
or starts it, and runs trials until the study holds n finished ones (complete or pruned),
whoever ran them. The study lives beside the runs: ``optuna.db`` next to the project's
MLflow store, or the team's database (``OPTUNA_DATABASE_URL`` in .env) beside a server.
MLflow shows one run for the study with a nested run per trial. A killed search resumes
when started again; the trial it was running is failed once its heartbeat stops. At the
end the best trial is trained as ``make train`` does (champion only if it scores better).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import optuna
import yaml
from dslc import config, data, get_logger, tracking
from filelock import FileLock
from optuna.trial import TrialState

from {{ cookiecutter.module_name }} import evaluate, train
from {{ cookiecutter.module_name }}.dataset import TARGET, TRAIN_DATASET

log = get_logger(__name__)
# A worker beats every HEARTBEAT_S while its trial runs; a trial silent for GRACE_S failed.
HEARTBEAT_S, GRACE_S = 2, 10
PARENT, CHILD = "mlflow_parent_run_id", "mlflow_run_id"  # the study's and trials' user attrs
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def storage_url() -> str:
    """optuna.db beside a local MLflow store; the team's database beside a server."""
    store = config.tracking_uri()  # loads .env first
    if team := os.environ.get("OPTUNA_DATABASE_URL", "").strip():
        return team
    if not store.startswith("sqlite:///"):
        sys.exit(
            "error: runs go to a tracking server, so the study must be shared too: set "
            "OPTUNA_DATABASE_URL in .env (README, Tuning)"
        )
    mlflow_db = Path(store.removeprefix("sqlite:///").split("?")[0])
    return f"sqlite:///{mlflow_db.with_name('optuna.db')}"


def fail_run(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """A trial whose worker died is failed; its MLflow run, found by its tags (which exist
    from the run's first moment), ends FAILED with it."""
    client, parent = tracking.client(), study.user_attrs[PARENT]
    found = f"tags.mlflow.parentRunId = '{parent}' and tags.`optuna.trial` = '{trial.number}'"
    for run in client.search_runs([client.get_run(parent).info.experiment_id], found):
        if run.info.status == "RUNNING":
            client.set_terminated(run.info.run_id, "FAILED")


def open_study(name: str, seed: int, create: bool = True) -> tuple[optuna.Study, bool]:
    """The study, and whether this call created it (the database makes one creator)."""
    storage = optuna.storages.RDBStorage(
        storage_url(), heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
        heartbeat_stale_trial_callback=fail_run,
    )  # fmt: skip
    options = {
        "study_name": name,
        "storage": storage,
        "sampler": optuna.samplers.TPESampler(seed=seed),
        "pruner": optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1),
    }
    direction = "maximize" if config.settings().get("higher_is_better", True) else "minimize"
    if not create:  # a study without its MLflow run would make the next search wait for it
        try:
            return optuna.load_study(**options), False
        except KeyError:
            sys.exit(f"error: no study {name} yet: run `make tune` first")
    try:
        return optuna.create_study(direction=direction, **options), True
    except optuna.exceptions.DuplicatedStudyError:
        return optuna.load_study(**options), False


def parent_run(study: optuna.Study, created: bool, params: dict) -> str:
    """The study's MLflow run: made by the study's creator, found by every other process."""
    deadline = time.monotonic() + (0 if created else 60)
    while PARENT not in study.user_attrs and time.monotonic() < deadline:
        time.sleep(0.5)  # its creator is about to record it
    if PARENT not in study.user_attrs:
        tags = {"optuna.study": study.study_name}
        with tracking.run(f"tune-{study.study_name}", params=params, tags=tags) as run:
            data.load(TRAIN_DATASET)  # the run records which data the search used
        study.set_user_attr(PARENT, run.id)
    run_id = study.user_attrs[PARENT]
    tracking.client().update_run(run_id, status="RUNNING")  # again, when a search resumes
    return run_id


def suggest(trial: optuna.Trial, space: dict) -> dict:
    """A value per searched parameter: ``{choices: [...]}`` or a range ``{low, high, log}``."""
    found = {}
    for name, spec in space.items():
        if "choices" in spec:
            found[name] = trial.suggest_categorical(name, spec["choices"])
            continue
        integers = isinstance(spec["low"], int) and isinstance(spec["high"], int)
        kind = trial.suggest_int if integers else trial.suggest_float
        found[name] = kind(name, spec["low"], spec["high"], log=spec.get("log", False))
    return found


def work(study: optuna.Study, params: dict, trials: int, parent: str, lock: FileLock) -> None:
    """Run trials until the study holds ``trials`` finished ones, counting other workers'."""
    settings, name = params["train"], params["train"]["estimator"]
    metric = config.settings()["metric"].removeprefix("test_")
    frame = data.load(TRAIN_DATASET)
    X, y = frame.drop(columns=[TARGET]), frame[TARGET]
    splits = list(evaluate.folds(settings["cv_folds"], settings["seed"]).split(X, y))

    def objective(trial: optuna.Trial) -> float:
        lock.release()  # taken below: this trial now counts, another worker may start one
        chosen = {**settings["estimators"][name], **suggest(trial, params["tune"]["space"][name])}
        model_params = {**settings, "estimators": {name: chosen}}
        scores: list[float] = []
        logged = {"trial": trial.number, **chosen}
        tags = {"optuna.trial": trial.number}
        with tracking.run(f"trial-{trial.number}", params=logged, tags=tags, parent=parent) as run:
            trial.set_user_attr(CHILD, run.id)
            for step, (fit, held) in enumerate(splits):
                model = train.make_model(model_params).fit(X.iloc[fit], y.iloc[fit])
                scores.append(evaluate.scores(y.iloc[held], model.predict(X.iloc[held]))[metric])
                trial.report(statistics.fmean(scores), step)  # the pruner compares these
                if trial.should_prune():
                    break
            # One batch (no tag call): fewer folds than cv_folds marks a pruned trial.
            mean, std = statistics.fmean(scores), statistics.pstdev(scores)
            run.log_metrics(
                {f"cv_{metric}_mean": mean, f"cv_{metric}_std": std, "folds": len(scores)}
            )
        log.info("Trial %d: cv %s %.4f, %d folds", trial.number, metric, mean, len(scores))
        if len(scores) < len(splits):
            raise optuna.TrialPruned()
        return mean

    while True:
        # One worker of this machine at a time counts and starts a trial, so that two never
        # take the last one (workers on other machines can: the study then holds one more).
        lock.acquire()
        optuna.storages.fail_stale_trials(study)  # a killed worker's trial: FAIL
        states = [trial.state for trial in study.get_trials(deepcopy=False)]
        done = sum(state in FINISHED for state in states)
        if done + states.count(TrialState.RUNNING) < trials:
            study.optimize(objective, n_trials=1)
            continue
        lock.release()
        if done >= trials:
            return
        time.sleep(HEARTBEAT_S)  # the last trials run elsewhere: wait for them


def finish(study: optuna.Study, params: dict, parent: str) -> None:
    """The best trial on the study's run; then trained and registered, once per best."""
    best, client = study.best_trial, tracking.client()
    metric = config.settings()["metric"].removeprefix("test_")
    client.log_metric(parent, f"best_cv_{metric}_mean", best.value)
    client.log_metric(parent, "best_trial", best.number)
    for key, value in best.params.items():  # tags: a later, longer search may change them
        client.set_tag(parent, f"best.{key}", str(value))
    client.set_terminated(parent, "FINISHED")
    log.info("Best: trial %d, cv %s %.4f, %s", best.number, metric, best.value, best.params)
    if study.user_attrs.get("trained_trial") != best.number:
        study.set_user_attr("trained_trial", best.number)  # another machine's finish skips it
        settings, name = params["train"], params["train"]["estimator"]
        settings["estimators"][name] = {**settings["estimators"][name], **best.params}
        train.main(settings)


def apply_best(study: optuna.Study, name: str) -> None:
    """The estimator's line in params.yaml with the best trial's values; comments stay."""
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        sys.exit(f"error: the study {study.study_name} has no complete trial: make tune first")
    file = config.project_root() / "params.yaml"
    text = file.read_text(encoding="utf-8")
    match = re.search(r"^ +" + re.escape(name) + r": *(\{.*?\})", text, flags=re.M)
    if match is None:
        sys.exit(f"error: params.yaml has no one-line entry for {name} under train.estimators")
    values = {**yaml.safe_load(match[1]), **study.best_trial.params}
    flow = yaml.safe_dump(values, default_flow_style=True, sort_keys=False).strip()
    file.write_text(text[: match.start(1)] + flow + text[match.end(1) :], encoding="utf-8")
    print(f"params.yaml: train.estimators.{name} = {flow} (trial {study.best_trial.number})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, help="finished trials the study should hold")
    parser.add_argument("--workers", type=int, default=1, help="processes on this machine")
    parser.add_argument("--apply", action="store_true", help="write the best into params.yaml")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    # Our line per trial says more than Optuna's; its heartbeat API is marked experimental.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    params = yaml.safe_load((config.project_root() / "params.yaml").read_text(encoding="utf-8"))
    name, seed = params["train"]["estimator"], params["tune"]["seed"]
    trials = args.trials or params["tune"]["trials"]
    if trials < 1 or args.workers < 1:
        parser.error("TRIALS and WORKERS must be at least 1")
    if name not in params["tune"]["space"]:
        sys.exit(f"error: params.yaml: tune.space has no search space for {name!r}")
    # The other workers start first: their imports overlap this process's set-up.
    command = [sys.executable, "-m", __spec__.name, "--worker", "--trials", str(trials)]
    others = [subprocess.Popen(command) for _ in range(args.workers - 1)]
    lock = FileLock(config.project_root() / "models" / "tune.lock")
    with lock:  # one process creates the database's tables and the study
        study, created = open_study(f"{config.settings()['model']}-{name}", seed, not args.apply)
    if args.apply:
        return apply_best(study, name)
    parent = parent_run(study, created, {"estimator": name, "seed": seed})
    try:
        work(study, params, trials, parent, lock)
    except BaseException:
        for other in others:
            other.terminate()
        raise
    if any(other.wait() != 0 for other in others):
        sys.exit("error: a worker failed (its output says why); `make tune` again resumes")
    if not args.worker:
        finish(study, params, parent)


if __name__ == "__main__":
    main()
