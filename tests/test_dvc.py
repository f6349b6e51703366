"""Data versioned with DVC (data_versioning=dvc), and nothing of DVC without it.

The slow tests share one team: an author's project (a copy of `ready_project`, with its own
MLflow store and data) pushes to the default folder remote, and a teammate clones it with
git, runs `make setup && make pull` and gets every byte.
"""

from __future__ import annotations

import os
import re
import shutil
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from tests.conftest import ROOT, copy_project, seed_environment
from tests.generated import commit_all, sh

SKIPPED = re.compile(r"Stage '(\w+)' didn't change, skipping")
RAN = re.compile(r"Running stage '(\w+)'")
# The pipeline's data files: each new content is read at most twice, at most once by DVC
# (its stage commit) and at most once by dslc (its fingerprint, after DVC's rewrite).
DATA_FILES = (
    "data/raw/iris.csv",
    "data/processed/iris_train.parquet",
    "data/processed/iris_test.parquet",
    "data/processed/iris_predictions.csv",
)


def counting_reads(log: Path) -> dict[str, str]:
    """The environment under which every process logs each file dslc or DVC reads to hash
    it (helpers/tests/hashlog): ``<tool> <path>`` lines in ``log``."""
    log.write_text("")
    return {"HASH_LOG": str(log), "PYTHONPATH": str(ROOT / "helpers" / "tests" / "hashlog")}


def reads(log: Path) -> list[tuple[str, str]]:
    """(tool, path) of each file read to be hashed (DVC's in-memory objects left out)."""
    lines = [line.partition(" ")[::2] for line in log.read_text().splitlines()]
    return [(tool, path) for tool, path in lines if "/memory:/" not in path]


def test_none_is_free_of_dvc(bake):
    project = bake(data_versioning="none")

    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    dependencies = [*pyproject["project"]["dependencies"]]
    dependencies += [d for group in pyproject["dependency-groups"].values() for d in group]
    assert not [d for d in dependencies if re.match(r"dvc\b", d)], dependencies
    for path in project.rglob("*"):
        relative = path.relative_to(project)
        if ".git" in relative.parts:
            continue
        assert "dvc" not in relative.as_posix().lower(), relative
        if path.is_file():
            # The dslc requirement names the template's folder, which may contain "dvc".
            lines = path.read_text().splitlines()
            mentions = [line for line in lines if "dvc" in line.lower() and "dslc[" not in line]
            assert not mentions, f"{relative}: {mentions}"
    makefile = (project / "Makefile").read_text()
    assert not re.search(r"^(push|pull):", makefile, re.MULTILINE)


def test_dvc_project_starts_initialized_with_a_folder_remote(bake):
    project = bake(project_slug="team-model")

    config = (project / ".dvc" / "config").read_text()
    assert re.search(r"^\s*analytics = false$", config, re.MULTILINE)
    assert re.search(r"^\s*remote = storage$", config, re.MULTILINE)
    assert "url = ../../team-model-dvc-remote" in config
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    assert list(stages) == ["data", "features", "train", "predict"]
    assert stages["train"]["params"] == ["train"]
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["train"]["estimators"][params["train"]["estimator"]]["C"] == 1.0
    dependencies = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    assert any(d.startswith("dvc>=") for d in dependencies["dependencies"])


def stages(output: str) -> tuple[set[str], set[str]]:
    """(stages DVC ran, stages it skipped) in a `make` output."""
    return set(RAN.findall(output)), set(SKIPPED.findall(output))


def last_run(project: Path) -> str:
    return yaml.safe_load((project / "models" / "train.json").read_text())["run_id"]


@pytest.fixture(scope="module")
def first_model(ready_project, tmp_path_factory) -> SimpleNamespace:
    """A copy of the set-up project, trained from committed code and data: the project,
    and the id of that run."""
    team = tmp_path_factory.mktemp("team")
    project = copy_project(ready_project, team)
    log = team / "hash.log"
    env = counting_reads(log)
    sh("make data", project, env=env)
    commit_all(project, "Lock and data versions")  # uv.lock, dvc.lock, catalog fingerprints
    sh("make train predict", project, env=env)
    commit_all(project, "First model")
    sh("make push", project)  # now, whatever the tests do to the author's files later
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    outputs = [out["path"] for stage in lock["stages"].values() for out in stage.get("outs", [])]
    return SimpleNamespace(
        project=project,
        run_id=last_run(project),
        reads=reads(log),
        pushed={path: (project / path).read_bytes() for path in outputs},
    )


@pytest.fixture(scope="module")
def author(first_model) -> Path:
    return first_model.project


@pytest.fixture(scope="module")
def teammate(author) -> Path:
    """The author pushed the first model; a teammate clones with git next to the author's
    folder, so the default remote (a folder beside the project) is the same folder. The
    environment is hard-linked from the author's to keep the test short (as in
    test_team.py); `make setup` makes it the clone's."""
    assert (author.parent / f"{author.name}-dvc-remote").is_dir()
    clone = author.parent / "teammate"
    sh(f"git clone --quiet {author} {clone}", author.parent)
    seed_environment(clone, author)
    sh("make setup", clone)
    return clone


@pytest.mark.slow
def test_the_pipeline_reads_each_data_file_at_most_once_per_tool(first_model):
    """From `make data` to `make predict`: DVC's stage commits read each output once; dslc
    reads none at save (DVC rewrites it when the stage ends) and an input once, at the
    tracked run's load, after DVC's rewrite; the run's md5 tags come from dvc.lock."""
    project = first_model.project
    for rel in DATA_FILES:
        tools = [tool for tool, path in first_model.reads if path == str(project / rel)]
        assert tools.count("dvc") <= 1 and tools.count("dslc") <= 1, (rel, first_model.reads)
        assert set(tools) <= {"dvc", "dslc"}, (rel, tools)
    trained_on = [str(project / rel) for rel in DATA_FILES[1:3]]
    dslc_reads = [path for tool, path in first_model.reads if tool == "dslc"]
    assert sorted(dslc_reads) == sorted(trained_on), first_model.reads  # the run's inputs


@pytest.mark.slow
def test_a_teammate_gets_every_byte_with_make_pull(first_model, teammate, tmp_path):
    assert not (teammate / "data" / "raw" / "iris.csv").exists()
    log = tmp_path / "hash.log"
    sh("make pull", teammate, env=counting_reads(log))
    # Each restored file read once, its cache file checked by dslc; DVC read none.
    restored = reads(log)
    assert {tool for tool, _ in restored} == {"dslc"}, restored
    assert all("/.dvc/cache/files/md5/" in path for _, path in restored), restored
    assert len(restored) == len({path for _, path in restored})

    assert {"data/raw/iris.csv", "models/train.json"} <= set(first_model.pushed)
    for path, content in first_model.pushed.items():
        assert (teammate / path).read_bytes() == content, path
    sh(".venv/bin/dslc data verify", teammate)  # reads every file again, on purpose
    # Restored outputs are DVC's: nothing needs building again, or reading, when the run
    # models/train.json names is in the store (the team's, here the author's).
    team_store = {"MLFLOW_TRACKING_URI": f"sqlite:///{first_model.project}/mlflow.db"}
    env = {**counting_reads(log), **team_store}
    ran, skipped = stages(sh("make train", teammate, env=env).stdout)
    assert not ran and skipped == {"data", "features", "train"}
    # DVC hashes the stages' code once in a new clone; no data file is read.
    assert not [path for _, path in reads(log) if "/src/" not in path], reads(log)


@pytest.mark.slow
def test_unchanged_pipeline_is_skipped_and_a_parameter_reruns_only_training(author, tmp_path):
    log = tmp_path / "hash.log"
    output = sh("make train", author, env=counting_reads(log))
    ran, skipped = stages(output.stdout)
    assert not ran and skipped == {"data", "features", "train"}, output.stdout
    assert "registered version" not in output.stderr
    assert reads(log) == []  # unchanged: neither DVC nor dslc reads a file

    params = author / "params.yaml"
    original = params.read_text()
    params.write_text(original.replace("C: 1.0", "C: 0.5"))
    try:
        ran, skipped = stages(sh("make train", author).stdout)
    finally:
        params.write_text(original)
    assert ran == {"train"} and skipped == {"data", "features"}


@pytest.mark.slow
def test_a_past_run_is_reproduced_after_the_raw_data_changed(author, first_model):
    run_id = first_model.run_id
    raw = author / "data" / "raw" / "iris.csv"
    changed = "".join(raw.read_text().splitlines(keepends=True)[:-30])
    raw.write_text(changed)
    ran, _ = stages(sh("make train", author).stdout)
    assert {"data", "features", "train"} <= ran
    newer = last_run(author)

    result = sh(f".venv/bin/dslc reproduce {run_id}", author)
    table = result.stdout
    assert re.search(r"^test_accuracy\s+\S+\s+\S+\s+yes$", table, re.MULTILINE), table
    assert f"run {run_id} reproduced" in table
    assert raw.read_text() == changed, "the user's work tree was left alone"
    assert sh("git worktree list", author).stdout.count("\n") == 1

    # Trained before the new data was committed: only dvc.lock and the catalog differed
    # from the commit, and the run's md5 tags name the data, so it is reproducible too.
    again = sh(f".venv/bin/dslc reproduce {newer[:8]}", author)  # the ID `dslc runs` shows
    assert f"run {newer} reproduced" in again.stdout, again.stdout

    code = next((author / "src").iterdir()) / "evaluate.py"
    original, stat = code.read_text(), code.stat()
    code.write_text(original + "# an uncommitted change\n")
    try:
        scratch = sh(
            ".venv/bin/python -c 'from dslc import tracking\n"
            'with tracking.run(name="scratch") as run: print(run.id)\'',
            author,
        ).stdout.split()[-1]
    finally:  # as it was, its time too: DVC need not hash it again in the other tests
        code.write_text(original)
        os.utime(code, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    refused = sh(f".venv/bin/dslc reproduce {scratch}", author, check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip().count("\n") == 0, refused.stderr
    # Its uncommitted change is recorded (test_team.py applies such changes), but `python -c`
    # names no module to run again.
    assert "records no command" in refused.stderr, refused.stderr


@pytest.mark.slow
def test_pull_errors_are_one_line_and_leave_data_alone(teammate, tmp_path):
    sh("make pull", teammate)
    raw = teammate / "data" / "raw" / "iris.csv"
    raw.unlink()
    shutil.rmtree(teammate / ".dvc" / "cache")  # a new clone: only the remote has the data

    empty = tmp_path / "empty-remote"
    empty.mkdir()
    for remote in (tmp_path / "no-such-folder", empty):
        sh(f".venv/bin/dvc remote modify --local storage url {remote}", teammate)
        result = sh("make pull", teammate, check=False)
        errors = [line for line in result.stderr.splitlines() if line.startswith("dslc: error")]
        assert result.returncode != 0 and len(errors) == 1, result.stderr
        assert "does not exist" in errors[0] or "lacks" in errors[0]
        assert not raw.exists()
    (teammate / ".dvc" / "config.local").unlink()
    sh("make pull", teammate)
    raw.unlink()

    md5 = yaml.safe_load((teammate / "dvc.lock").read_text())["stages"]["data"]["outs"][0]["md5"]
    cached = teammate / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    # Rotten behind DVC's back: still read-only, as DVC leaves its cache files (DVC itself
    # re-fetches a cache file it finds writable).
    cached.chmod(0o644)
    cached.write_text("not the data\n")
    cached.chmod(0o444)
    result = sh("make pull", teammate, check=False)
    errors = [line for line in result.stderr.splitlines() if line.startswith("dslc: error")]
    assert result.returncode != 0 and len(errors) == 1 and "corrupted" in errors[0], result.stderr
    assert not raw.exists()
