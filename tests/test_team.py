"""A team on one project, played through as two people would: an author and a teammate in
folders of their own, one team DVC remote (a folder) and one team tracking store, both
set once with `dslc team` and committed. The author trains but never predicts (so
dvc.lock has no predictions), pushes; the teammate clones, pulls, checks, predicts with
the team's champion, trains from uncommitted work and pushes; the author reproduces that
run. A clone on a store of its own trains at its first `make train`.

The team store is a real `mlflow server` on loopback (SQLite behind it; test_postgres.py
runs `make tracking-server` on PostgreSQL): both clones reach it by the committed URI.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from tests.conftest import copy_project, seed_environment
from tests.generated import commit_all, sh
from tests.servers import MLFLOW_SERVER, background, free_port

pytestmark = pytest.mark.slow
RAN = re.compile(r"Running stage '(\w+)'")


def recorded(project: Path) -> dict[str, bytes]:
    """Every output dvc.lock records, with its bytes."""
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    paths = [out["path"] for stage in lock["stages"].values() for out in stage.get("outs", [])]
    return {path: (project / path).read_bytes() for path in paths}


@pytest.fixture(scope="module")
def team(ready_project, tmp_path_factory) -> Iterator[SimpleNamespace]:
    base = tmp_path_factory.mktemp("team")
    (base / "author").mkdir()
    (base / "elsewhere").mkdir()
    (base / "store").mkdir()
    author = copy_project(ready_project, base / "author")
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    server = (
        f"{MLFLOW_SERVER} --backend-store-uri sqlite:///{base / 'store' / 'mlflow.db'}"
        f" --artifacts-destination {base / 'store' / 'artifacts'} --host 127.0.0.1 --port {port}"
    )
    with background(server, author, f"{uri}/health", base / "server.log"):
        yield from _play(author, base, uri)


def _play(author: Path, base: Path, uri: str) -> Iterator[SimpleNamespace]:
    said = sh(f".venv/bin/dslc team --remote {base / 'remote'} --tracking-uri {uri}", author)
    assert "commit .dvc/config and pyproject.toml" in said.stdout
    commit_all(author, "Team settings")
    sh("make train", author)  # the README's flow; `make predict` never ran
    commit_all(author, "First model")
    sh("make push", author)
    # The teammate clones in a folder of their own (the old default remote, a folder
    # beside the project, would not be found from there); the environment is linked to
    # keep the test short, `make setup` makes it the clone's.
    teammate = base / "elsewhere" / "teammate"
    sh(f"git clone --quiet {author} {teammate}", base)
    seed_environment(teammate, author)
    sh("make setup", teammate)
    for project in (author, teammate):  # hard links: each must still import its own code
        [pth] = (project / ".venv").glob("lib/python*/site-packages/_editable_impl_*.pth")
        assert pth.read_text().strip() == str(project / "src"), pth.read_text()
    yield SimpleNamespace(author=author, teammate=teammate, base=base)
    for project in (author, teammate):
        shutil.rmtree(project / ".venv", ignore_errors=True)


def test_a_teammate_pulls_predicts_trains_and_the_author_reproduces(team):
    author, teammate = team.author, team.teammate
    sh("make pull", teammate)
    pushed = recorded(author)
    assert "data/processed/iris_predictions.csv" not in pushed  # predict never ran
    assert recorded(teammate) == pushed and "models/train.json" in pushed
    doctor = sh("make doctor", teammate).stdout
    assert [line.split(":")[0] for line in doctor.splitlines() if ":" in line][-4:] == [
        "ok    remote", "ok    tracking", "ok    champion", "ok    data"
    ], doctor  # fmt: skip
    sh("make predict", teammate)  # the team's champion, registered by the author
    assert (teammate / "data/processed/iris_predictions.csv").stat().st_size > 0

    # Daily flow: edit, train, then commit. The run records the uncommitted change.
    params = teammate / "params.yaml"
    params.write_text(params.read_text().replace("C: 1.0", "C: 0.5"))
    assert "train" in RAN.findall(sh("make train", teammate).stdout)
    run_id = yaml.safe_load((teammate / "models/train.json").read_text())["run_id"]
    commit_all(teammate, "C=0.5")
    sh("make push", teammate)

    sh(f"git pull --quiet --no-rebase {teammate} HEAD && make pull", author)
    refused = sh(f".venv/bin/dslc reproduce {run_id[:8]}", author, check=False)
    assert refused.returncode == 1 and "--apply-changes" in refused.stderr, refused.stderr
    assert "params.yaml" in refused.stderr.splitlines()[-1]
    result = sh(f".venv/bin/dslc reproduce {run_id[:8]} --apply-changes", author)
    assert f"run {run_id} reproduced" in result.stdout, result.stdout
    applied = re.search(r"^applying the run's uncommitted changes to (.*)$", result.stderr, re.M)
    assert applied and "params.yaml" in applied[1].split(", "), result.stderr

    # A clone on a store of its own: the run models/train.json names is not there, so the
    # first `make train` trains, and predict has a champion.
    own = {"MLFLOW_TRACKING_URI": f"sqlite:///{teammate}/own.db"}
    output = sh("make train predict", teammate, env=own)
    assert "train" in RAN.findall(output.stdout), output.stdout
    assert "has no run" in output.stderr, output.stderr
