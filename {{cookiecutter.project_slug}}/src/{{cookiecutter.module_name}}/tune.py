"""Search the estimator's parameters with Optuna over the space in params.yaml (``tune``).

``make tune TRIALS=n WORKERS=k`` joins the study of the estimator that params.yaml names,
or starts it, and stops once the study holds n finished trials (complete or pruned), run
by however many processes and machines took part. The study lives beside the runs:
``optuna.db`` next to the project's MLflow store, or the team's PostgreSQL
(``OPTUNA_DATABASE_URL`` in .env) when the runs go to a server. MLflow shows one run for
the study with a nested run per trial. Trials that fall behind the others' median score
after a fold are pruned.

A killed search resumes when started again: finished trials stay, and a trial whose
process died is marked failed once its heartbeat stops. At the end the best trial is
trained on the whole training set as ``make train`` does (registered; champion only if it
scores better), and ``make tune-apply`` writes its parameters into params.yaml.
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
from collections import Counter
from pathlib import Path

import optuna
import yaml
from dslc import config, data, get_logger, tracking
from optuna.trial import TrialState

from {{ cookiecutter.module_name }} import evaluate, train
from {{ cookiecutter.module_name }}.dataset import TARGET, TRAIN_DATASET

log = get_logger(__name__)
# A worker's running trial beats every HEARTBEAT_S; one silent for GRACE_S is failed.
HEARTBEAT_S, GRACE_S = 2, 10
PARENT, CHILD = "mlflow_parent_run_id", "mlflow_run_id"  # the study's and trials' user attrs
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


class Surplus(Exception):
    """Two workers started the study's last trial at once: the later one stops."""


def storage_url() -> str:
    """optuna.db beside a local MLflow store; the team's database for any other store."""
    store = config.tracking_uri()  # loads .env first
    team = os.environ.get("OPTUNA_DATABASE_URL", "").strip()
    if team:
        return team
    if not store.startswith("sqlite:///"):
        sys.exit(
            "error: runs go to a tracking server, so the study must be shared too: set "
            "OPTUNA_DATABASE_URL in .env (README, Tuning)"
        )
    mlflow_db = Path(store.removeprefix("sqlite:///").split("?")[0])
    return f"sqlite:///{mlflow_db.with_name('optuna.db')}"


def fail_trial_run(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """The MLflow run of a trial whose process died ends FAILED, like the trial."""
    run_id = trial.user_attrs.get(CHILD)
    if run_id and tracking.client().get_run(run_id).info.status == "RUNNING":
        tracking.client().set_terminated(run_id, "FAILED")


def open_study(name: str, seed: int) -> tuple[optuna.Study, bool]:
    """The study, and whether this call created it (the database makes one creator)."""
    storage = optuna.storages.RDBStorage(
        storage_url(),
        heartbeat_interval=HEARTBEAT_S,
        grace_period=GRACE_S,
        heartbeat_stale_trial_callback=fail_trial_run,
    )
    options = {
        "study_name": name,
        "storage": storage,
        "sampler": optuna.samplers.TPESampler(seed=seed),
        "pruner": optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1),
    }
    direction = "maximize" if config.settings().get("higher_is_better", True) else "minimize"
    try:
        return optuna.create_study(direction=direction, **options), True
    except optuna.exceptions.DuplicatedStudyError:
        return optuna.load_study(**options), False


def parent_run(study: optuna.Study, created: bool, params: dict) -> str:
    """The study's MLflow run: made by the study's creator, found by every other process."""
    deadline = time.monotonic() + (0 if created else 60)
    while PARENT not in study.user_attrs and time.monotonic() < deadline:
        time.sleep(1)  # its creator is about to record it
    if PARENT not in study.user_attrs:
        tags = {"optuna.study": study.study_name}
        with tracking.run(f"tune-{study.study_name}", params=params, tags=tags) as run:
            data.load(TRAIN_DATASET)  # the run records which data the search used
        study.set_user_attr(PARENT, run.id)
    run_id = study.user_attrs[PARENT]
    tracking.client().update_run(run_id, status="RUNNING")  # again, after a kill or an end
    return run_id


def suggest(trial: optuna.Trial, space: dict) -> dict:
    """A value for each searched parameter: ``{choices: [...]}`` or ``{low, high, log}``."""
    found = {}
    for name, spec in space.items():
        if "choices" in spec:
            found[name] = trial.suggest_categorical(name, spec["choices"])
            continue
        low, high, log_scale = spec["low"], spec["high"], spec.get("log", False)
        integers = isinstance(low, int) and isinstance(high, int)
        suggest_range = trial.suggest_int if integers else trial.suggest_float
        found[name] = suggest_range(name, low, high, log=log_scale)
    return found


def work(study: optuna.Study, params: dict, trials: int, parent: str) -> None:
    """Run trials until the study holds ``trials`` finished ones, counting other workers'."""
    settings, metric = params["train"], config.settings()["metric"].removeprefix("test_")
    name, folds = settings["estimator"], settings["cv_folds"]
    frame = data.load(TRAIN_DATASET)
    X, y = frame.drop(columns=[TARGET]), frame[TARGET]
    splits = list(evaluate.folds(folds, settings["seed"]).split(X, y))

    def objective(trial: optuna.Trial) -> float:
        earlier = study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING))
        if sum(t.number < trial.number for t in earlier) >= trials:
            raise Surplus(f"the study has its {trials} trials")
        searched = suggest(trial, params["tune"]["space"][name])
        chosen = {**settings["estimators"][name], **searched}
        model_params = {**settings, "estimators": {name: chosen}}
        scores: list[float] = []
        with tracking.run(
            f"trial-{trial.number}", params={"trial": trial.number, **chosen}, parent=parent
        ) as run:
            trial.set_user_attr(CHILD, run.id)
            for step, (fit, held) in enumerate(splits):
                model = train.make_model(model_params).fit(X.iloc[fit], y.iloc[fit])
                scores.append(evaluate.scores(y.iloc[held], model.predict(X.iloc[held]))[metric])
                trial.report(statistics.fmean(scores), step)  # the pruner compares these
                if trial.should_prune():
                    break
            pruned = len(scores) < folds
            mean, std = statistics.fmean(scores), statistics.pstdev(scores)
            # One batch at the run's end (no tag call): fewer `folds` marks a pruned trial.
            run.log_metrics(
                {f"cv_{metric}_mean": mean, f"cv_{metric}_std": std, "folds": len(scores)}
            )
        shown = f" (pruned after {len(scores)} folds)" if pruned else ""
        log.info("Trial %d: cv %s %.4f%s %s", trial.number, metric, mean, shown, searched)
        if pruned:
            raise optuna.TrialPruned()
        return mean

    while True:
        optuna.storages.fail_stale_trials(study)  # trials of killed workers: FAIL
        states = Counter(t.state for t in study.get_trials(deepcopy=False))
        done = states[TrialState.COMPLETE] + states[TrialState.PRUNED]
        if done >= trials:
            return
        if done + states[TrialState.RUNNING] >= trials:
            time.sleep(HEARTBEAT_S)  # the last trials run elsewhere: wait until they end
            continue
        study.optimize(objective, n_trials=1, catch=(Surplus,))


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
    study, created = open_study(f"{config.settings()['model']}-{name}", seed)
    if args.apply:
        return apply_best(study, name)
    parent = parent_run(study, created, {"estimator": name, "seed": seed})
    if args.worker:
        return work(study, params, trials, parent)
    command = [sys.executable, "-m", __spec__.name, "--worker", "--trials", str(trials)]
    others = [subprocess.Popen(command) for _ in range(args.workers - 1)]
    try:
        work(study, params, trials, parent)
    except BaseException as error:
        for other in others:
            other.terminate()
        ended = "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED"
        tracking.client().set_terminated(parent, ended)
        raise
    if any(other.wait() != 0 for other in others):
        tracking.client().set_terminated(parent, "FAILED")
        sys.exit("error: a worker failed (its output says why); make tune again resumes")
    finish(study, params, parent)


if __name__ == "__main__":
    main()
