"""Slow: `make tune` in a baked project, as the README's Tuning section says.

A small search (the fast logistic regression) with its nested runs; two workers on one
study; a search killed with kill -9 and started again; and the same study on the team's
PostgreSQL behind the team's MLflow server (tests/test_postgres.py's fixture). Each test
but the last gives its search a store of its own (MLFLOW_TRACKING_URI, which wins over
.env), so the tests do not share studies whatever their order.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.generated import ENV, sh
from tests.test_postgres import team_server  # noqa: F401 (a module fixture: the server)

pytestmark = pytest.mark.slow

MODULE = "my_ds_project"
STUDY = f"{MODULE}-logistic_regression"
# The study and the MLflow runs of a search, as JSON: trials by number, runs by name.
INSPECT = f"""
import json, optuna
from dslc import config, tracking
from {MODULE} import tune
study = optuna.load_study(study_name="{STUDY}", storage=tune.storage_url())
client = tracking.client()  # which creates the store under a lock, as the search does
experiment = client.get_experiment_by_name(config.project_name())
runs = client.search_runs([experiment.experiment_id])
print(json.dumps({{
    "trials": [[t.number, t.state.name, t.params, len(t.intermediate_values)]
               for t in study.trials],
    "champion": getattr(tracking.champion(), "version", None),
    "runs": [{{"name": r.info.run_name, "status": r.info.status, "params": r.data.params,
              "metrics": r.data.metrics, "tags": r.data.tags, "id": r.info.run_id}} for r in runs],
}}))
"""
# Kills the search (process group argv[2]) with SIGKILL while it runs a trial whose MLflow
# run exists, once two trials have finished. The search is stopped (SIGSTOP) before the
# check that decides, so its trial cannot end between that check and the kill.
KILL_IN_A_TRIAL = f"""
import os, re, signal, sys, time, optuna
from {MODULE} import tune
while not re.search("Trial [0-9]+:", open(sys.argv[1]).read()):
    time.sleep(0.1)
study = optuna.load_study(study_name="{STUDY}", storage=tune.storage_url())

def in_a_trial():
    try:
        trials = study.get_trials(deepcopy=False)
    except Exception:  # stopped in the middle of a commit: the database stays locked
        return False
    return sum(t.state in tune.FINISHED for t in trials) >= 2 and any(
        t.state.name == "RUNNING" and tune.CHILD in t.user_attrs for t in trials
    )

while True:
    if in_a_trial():
        os.killpg(int(sys.argv[2]), signal.SIGSTOP)
        if in_a_trial():
            os.killpg(int(sys.argv[2]), signal.SIGKILL)
            break
        os.killpg(int(sys.argv[2]), signal.SIGCONT)
    time.sleep(0.05)
"""


def store(tmp_path: Path) -> dict:
    """A fresh local store for one search: mlflow.db, and optuna.db beside it."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    return {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}


def inspect(project: Path, env: dict) -> dict:
    return json.loads(sh(f".venv/bin/python -c '{INSPECT}'", project, env=env).stdout)


def check_search(found: dict, trials: int) -> dict:
    """Trials 0..n-1 finished, each with one nested run holding its parameters once."""
    finished = [t for t in found["trials"] if t[1] in ("COMPLETE", "PRUNED")]
    assert sorted(t[0] for t in finished) == list(range(trials)), found["trials"]
    (parent,) = [r for r in found["runs"] if r["name"] == f"tune-{STUDY}"]
    assert parent["status"] == "FINISHED"
    children = [r for r in found["runs"] if r["tags"].get("mlflow.parentRunId") == parent["id"]]
    done = [r for r in children if r["status"] == "FINISHED"]
    assert sorted(int(r["params"]["trial"]) for r in done) == list(range(trials))
    by_number = {t[0]: t for t in finished}
    for run in done:
        _, state, params, steps = by_number[int(run["params"]["trial"])]
        assert float(run["params"]["C"]) == pytest.approx(params["C"])
        assert {"cv_f1_macro_mean", "cv_f1_macro_std"} <= set(run["metrics"])
        assert (run["metrics"]["folds"] < 5) == (state == "PRUNED") and steps >= 1
    assert "best.C" in parent["tags"] and "best_trial" in parent["metrics"]
    return parent


def test_a_search_logs_nested_runs_trains_the_best_and_applies_it(own_project, tmp_path):
    env = store(tmp_path)
    summary = own_project / "models" / "train.json"  # what `make train` last wrote
    # A champion first, trained with params.yaml's values, for the best trial to challenge.
    sh("make train FORCE=1", own_project, env=env)
    champion = json.loads(summary.read_text())
    early = sh("make tune-apply", own_project, env=env, check=False)  # no search yet
    assert early.returncode != 0 and "error: no study " in early.stderr
    assert "make tune" in early.stderr  # and it made no study (one would lack its MLflow run)
    result = sh("make tune TRIALS=4", own_project, env=env)
    found = inspect(own_project, env)
    parent = check_search(found, 4)
    scores = {t[0]: t for t in found["trials"]}
    best = int(parent["metrics"]["best_trial"])
    assert float(parent["tags"]["best.C"]) == pytest.approx(scores[best][2]["C"])
    # The best trial trained on the whole training set, registered, as `make train` does,
    # and the champion only if it scores better on the test set. It is no pipeline stage:
    # DVC's outputs (models/train.json) stay as dvc.lock records them.
    assert json.loads(summary.read_text()) == champion
    trains = [r for r in found["runs"] if r["name"] == "train"]
    (trained,) = [r for r in trains if r["id"] != champion["run_id"]]
    assert float(trained["params"]["C"]) == pytest.approx(scores[best][2]["C"])
    assert "registered version 2" in result.stdout + result.stderr
    better = trained["metrics"]["test_f1_macro"] > champion["test_f1_macro"]
    assert str(found["champion"]) == ("2" if better else "1"), (champion, trained["metrics"])

    params = own_project / "params.yaml"
    before = params.read_text()
    try:
        sh("make tune-apply", own_project, env=env)
        after = params.read_text().splitlines()
        # One line changed, the estimator's own; every comment and other line as it was.
        changed = [
            (old, new) for old, new in zip(before.splitlines(), after, strict=True) if old != new
        ]
        assert len(changed) == 1, changed
        written = {"logistic_regression": {"C": scores[best][2]["C"], "max_iter": 500}}
        assert yaml.safe_load(changed[0][1].strip()) == written
    finally:
        params.write_text(before)

    # The seed gives the same trials: a new study in another store proposes them again.
    again = store(tmp_path / "again")
    sh(f".venv/bin/python -m {MODULE}.tune --trials 4", own_project, env=again)
    assert [t[2] for t in inspect(own_project, again)["trials"]] == [t[2] for t in found["trials"]]


def test_two_workers_share_one_study_without_losing_or_repeating_a_trial(own_project, tmp_path):
    env = store(tmp_path)
    sh("make tune TRIALS=6 WORKERS=2", own_project, env=env)
    found = inspect(own_project, env)
    check_search(found, 6)
    assert all(t[1] != "FAIL" for t in found["trials"]), found["trials"]


def test_a_search_killed_with_kill_9_resumes(own_project, tmp_path):
    env = store(tmp_path)
    sh("make data", own_project)  # what `make tune` does first
    command = [".venv/bin/python", "-m", f"{MODULE}.tune", "--trials", "5"]
    with open(tmp_path / "first.log", "wb") as log:
        search = subprocess.Popen(
            command, cwd=own_project, env={**ENV, **env}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        watcher = f"'{KILL_IN_A_TRIAL}' {tmp_path / 'first.log'} {search.pid}"
        sh(f".venv/bin/python -c {watcher}", own_project, 300, env=env)
    finally:
        with contextlib.suppress(ProcessLookupError):  # killed already, unless the watch failed
            os.killpg(search.pid, signal.SIGKILL)
        assert search.wait() == -signal.SIGKILL, (tmp_path / "first.log").read_text()
    killed = inspect(own_project, env)
    kept = {t[0]: t[2] for t in killed["trials"] if t[1] in ("COMPLETE", "PRUNED")}
    (running,) = [t[0] for t in killed["trials"] if t[1] == "RUNNING"]

    sh(f".venv/bin/python -m {MODULE}.tune --trials 5", own_project, env=env)
    found = inspect(own_project, env)
    states = {t[0]: t[1] for t in found["trials"]}
    assert states[running] == "FAIL"
    assert {t[0]: t[2] for t in found["trials"] if t[0] in kept} == kept  # kept as they were
    assert sum(s in ("COMPLETE", "PRUNED") for s in states.values()) == 5
    assert len(states) == 6  # the killed trial is not run again under its number
    (parent,) = [r for r in found["runs"] if r["name"] == f"tune-{STUDY}"]
    assert parent["status"] == "FINISHED"
    (dead,) = [r for r in found["runs"] if r["params"].get("trial") == str(running)]
    # Found by its tag, which the run has from its first moment (a kill can come before
    # the trial records the run's id).
    assert dead["status"] == "FAILED" and dead["tags"]["optuna.trial"] == str(running)


def test_the_team_server_and_its_postgresql_hold_one_study_for_every_machine(
    own_project,
    postgres,
    team_server,  # noqa: F811 (the fixture imported above)
):
    env_file = own_project / ".env"
    original = env_file.read_text()
    # With runs on a server, a study needs the team's database: one line says so.
    missing = sh("make tune TRIALS=2", own_project, check=False)
    # Besides `make data`'s log and make's own "*** [Makefile:n: tune] Error 1".
    lines = [line for line in missing.stderr.splitlines() if "error" in line]
    assert missing.returncode != 0 and len(lines) == 1, missing.stderr
    assert lines[0].startswith("error: ") and "OPTUNA_DATABASE_URL" in lines[0]

    password = "pg-" + secrets.token_urlsafe(12)
    url = postgres.create_database("optuna", "optuna", password)
    env_file.write_text(original + f"\nOPTUNA_DATABASE_URL={url}\n")
    try:
        # Two "machines" at once: two `make tune` in one folder share nothing but .env.
        first = subprocess.Popen(
            ["make", "tune", "TRIALS=4"], cwd=own_project, env=ENV,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        second = sh("make tune TRIALS=4", own_project)
        output = first.communicate(timeout=900)[0].decode() + second.stdout + second.stderr
        assert first.returncode == 0, output
        found = inspect(own_project, {})
    finally:
        env_file.write_text(original)
    assert found["runs"] and all(password not in json.dumps(r) for r in found["runs"])
    assert password not in output
    check_search(found, 4)
    tables = postgres.psql("SELECT count(*) FROM trials", database="optuna")
    assert int(tables.strip()) >= 4
