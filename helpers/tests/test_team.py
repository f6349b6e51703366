"""A team's committed settings (`dslc team`), `dslc doctor` and `dslc runs --check`."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from fakedvc import FakeDvc

from dslc import cli, config


@pytest.fixture
def fake(tmp_path: Path, monkeypatch) -> FakeDvc:
    return FakeDvc(tmp_path / "fake-dvc", monkeypatch)


def test_team_commits_the_remote_and_the_tracking_uri(project: Path, fake, capsys) -> None:
    (project / ".dvc").mkdir()
    before = (project / "pyproject.toml").read_text()
    uri = "http://mlflow-host:5000"
    assert cli.main(["team", "--remote", "/mnt/team/demo", "--tracking-uri", uri]) == 0
    assert (
        capsys.readouterr().out == "team settings written: commit .dvc/config and pyproject.toml\n"
    )
    assert fake.calls == [("remote", "add", "--default", "--force", "storage", "/mnt/team/demo")]
    after = (project / "pyproject.toml").read_text()
    assert tomllib.loads(after)["tool"]["dslc"]["tracking_uri"] == uri
    assert set(before.splitlines()) <= set(after.splitlines())  # every other line kept
    assert config.tracking_uri(project) == uri
    assert cli.main(["team", "--tracking-uri", "http://other:5000"]) == 0  # replaced, once
    assert (project / "pyproject.toml").read_text().count("tracking_uri") == 1
    assert config.tracking_uri(project) == "http://other:5000"
    # .env (or the environment) still wins, for one clone.
    (project / ".env").write_text("MLFLOW_TRACKING_URI=http://mine:5000\n")
    assert config.tracking_uri(project) == "http://mine:5000"


@pytest.mark.parametrize(
    "args",
    [
        ["--tracking-uri", "http://me:hunter22@mlflow-host:5000"],
        ["--remote", "ssh://me:hunter22@host/srv/demo"],
        [],
    ],
)
def test_team_refuses_a_secret_in_one_line_and_writes_nothing(project, fake, capsys, args):
    (project / ".dvc").mkdir()
    before = (project / "pyproject.toml").read_text()
    assert cli.main(["team", *args]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "hunter22" not in err, err
    assert (project / "pyproject.toml").read_text() == before and fake.calls == []


def test_a_committed_uri_with_a_password_is_refused(project: Path) -> None:
    file = project / "pyproject.toml"
    file.write_text(file.read_text() + 'tracking_uri = "http://u:pw123456@h:5000"\n')
    with pytest.raises(config.ConfigError, match="holds a password"):
        config.tracking_uri(project)


def test_runs_check_says_whether_the_store_has_the_named_run(tproj: Path, capsys) -> None:
    from dslc import tracking

    summary = tproj / "models" / "train.json"
    assert cli.main(["runs", "--check", str(summary)]) == 0  # no summary yet: nothing lacks
    summary.parent.mkdir(exist_ok=True)
    summary.write_text(json.dumps({"run_id": "0" * 32}))
    assert cli.main(["runs", "--check", str(summary)]) == 1
    assert f"has no run {'0' * 32}" in capsys.readouterr().err
    with tracking.run(name="trained") as run:
        pass
    summary.write_text(json.dumps({"run_id": run.id}))
    assert cli.main(["runs", "--check", str(summary)]) == 0


def test_doctor_prints_a_line_per_check_and_fails_if_one_does(tproj: Path, fake, capsys):
    (tproj / ".dvc").mkdir()
    with (tproj / "pyproject.toml").open("a") as file:
        file.write('model = "demo"\n')
    fake.reset(
        {
            "config --list": "core.remote=storage\nremote.storage.url=/srv/remote\n",
            "status --cloud --json": json.dumps({"data/raw/iris.csv": "missing"}),
            "status --json": "{}",
        }
    )
    assert cli.main(["doctor"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "FAIL  remote", "ok    tracking", "FAIL  champion", "ok    data"
    ]  # fmt: skip
    assert "lacks data/raw/iris.csv" in lines[0] and "make train" in lines[2]


def test_a_run_records_the_uncommitted_work_it_ran_from(tproj: Path, tmp_path: Path) -> None:
    from tracking_support import git, make_repo, run_data

    from dslc import tracking

    make_repo(tproj)
    (tproj / ".git/info/exclude").write_text("mlflow.db\ndata/\n.dslc/\nmlartifacts/\n")
    with tracking.run(name="clean") as run:
        pass
    assert "dslc.git.patch" not in run_data(run.id).data.tags
    (tproj / "pyproject.toml").write_text((tproj / "pyproject.toml").read_text() + "# edit\n")
    (tproj / "src/demo/new.py").write_text("X = 1\n")
    with tracking.run(name="dirty") as run:
        pass
    assert run_data(run.id).data.tags["dslc.git.patch"] == "dslc/changes.patch"
    folder = tracking.client().download_artifacts(run.id, "dslc/changes.patch", str(tmp_path))
    patch = Path(folder).read_text()
    assert "+# edit" in patch and "+++ b/src/demo/new.py" in patch
    assert git(tproj, "status", "--porcelain").splitlines() == ["M pyproject.toml", "?? src/"]


def test_doctor_without_dvc_checks_the_store_and_the_champion(tproj: Path, fake, capsys):
    assert cli.main(["doctor"]) == 1  # no model named: no champion
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["ok    tracking", "FAIL  champion"]
    assert fake.calls == []
