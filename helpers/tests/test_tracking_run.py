"""Tests of a run's lifecycle: nesting, stale runs, failures, tags of where it came from."""

from __future__ import annotations

import importlib.machinery
import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

mlflow = pytest.importorskip("mlflow", reason="mlflow not installed (dslc[tracking] extra)")
pytest.importorskip("filelock", reason="filelock not installed (dslc[tracking] extra)")

from tracking_support import client, git, make_repo, run_data  # noqa: E402

from dslc import tracking  # noqa: E402

PY = sys.executable


def test_logging_needs_a_live_run(tproj: Path) -> None:
    run = tracking.run()
    with pytest.raises(tracking.NoActiveRunError):
        run.log_metric("x", 1)
    with run:
        pass
    with pytest.raises(tracking.NoActiveRunError):
        run.log_metric("x", 1)


def test_runs_nest_under_an_enclosing_run(tproj: Path) -> None:
    with tracking.run("outer") as outer:
        with tracking.run() as inner:
            assert tracking.active() is inner
            inner.log_metric("m", 1)
        with pytest.raises(tracking.TrackingError, match="nested=False"):
            tracking.run(nested=False).__enter__()
        assert tracking.active() is outer
    assert tracking.active() is None and mlflow.active_run() is None
    assert inner.parent_id == outer.id
    inner_run = run_data(inner.id)
    assert inner_run.data.tags["mlflow.parentRunId"] == outer.id
    assert inner_run.info.status == "FINISHED" and run_data(outer.id).info.status == "FINISHED"
    assert outer.name == "outer"
    assert re.fullmatch(r"[\w.-]+-\d{8}-\d{6}", inner.name)  # <stem>-YYYYmmdd-HHMMSS


def test_stale_active_run_is_ended_with_a_warning(
    tproj: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tracking.ensure_store()
    stale = mlflow.start_run()  # e.g. a notebook cell that raised before end_run
    with caplog.at_level("WARNING", logger="dslc.tracking"), tracking.run() as run:
        pass
    assert run.parent_id is None
    assert run_data(stale.info.run_id).info.status == "KILLED"
    assert any("stale" in r.getMessage() and r.name == "dslc.tracking" for r in caplog.records)


def test_nested_true_nests_under_a_foreign_run(tproj: Path) -> None:
    tracking.ensure_store()
    with mlflow.start_run() as outer, tracking.run(nested=True) as run:
        pass
    assert run.parent_id == outer.info.run_id
    assert run_data(outer.info.run_id).info.status == "FINISHED"


def test_parent_nests_under_a_run_of_another_process_and_leaves_it_running(
    tproj: Path,
) -> None:
    # A study's run, which parallel workers share: not active here, and left as it was.
    with tracking.run("first") as first:
        pass
    parent = client().create_run(first.experiment_id).info.run_id
    with tracking.run(parent=parent) as child:
        pass
    assert child.parent_id == parent
    assert run_data(child.id).data.tags["mlflow.parentRunId"] == parent
    assert run_data(parent).info.status == "RUNNING" and mlflow.active_run() is None


def test_plain_runs_left_open_inside_are_ended_and_a_run_ended_by_hand_keeps_its_status(
    tproj: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="dslc.tracking"), tracking.run() as run:
        left_open = mlflow.start_run(nested=True)  # never ended by the user
    assert mlflow.active_run() is None
    assert run_data(left_open.info.run_id).info.status == "KILLED"
    assert run_data(run.id).info.status == "FINISHED"
    assert any("left open inside" in r.getMessage() for r in caplog.records)

    with pytest.raises(ValueError), tracking.run() as ended:
        mlflow.end_run()  # the user ends dslc's run by hand, then the block fails
        with mlflow.start_run():  # a run of its own, not inside dslc's: left alone
            raise ValueError("boom")
    assert run_data(ended.id).info.status == "FAILED"


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_and_environment_tags_from_python_c(project: Path, migrated_db: Path) -> None:
    shutil.copyfile(migrated_db, project / "mlflow.db")
    (project / ".gitignore").write_text("*\n", encoding="utf-8")  # only pyproject tracked
    make_repo(project)
    with (project / "pyproject.toml").open("a", encoding="utf-8") as fh:
        fh.write("# edited\n")  # a tracked file changes: dirty
    code = "from dslc import tracking\nwith tracking.run() as r:\n    print(r.id)\n"
    proc = subprocess.run(
        [PY, "-c", code], cwd=project, capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr
    tags = run_data(proc.stdout.strip().splitlines()[-1]).data.tags
    assert tags["mlflow.source.git.commit"] == git(project, "rev-parse", "HEAD")
    assert tags["mlflow.source.git.branch"] == "main"
    assert tags["dslc.git.dirty"] == "true"
    assert tags["mlflow.source.name"] == "python -c"
    assert "dslc.entry_point" not in tags  # python -c cannot be run again
    assert tags["mlflow.runName"].startswith("python-c-")
    assert tags["dslc.python"] == ".".join(map(str, sys.version_info[:3]))
    assert tags["dslc.pkg.mlflow"] == mlflow.__version__
    assert tags["dslc.project"] == "demo-project"
    assert "dslc.version" in tags


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_clean_repo_is_not_dirty(tproj: Path) -> None:
    (tproj / ".gitignore").write_text("*\n", encoding="utf-8")
    make_repo(tproj)
    with tracking.run() as run:
        pass
    assert run_data(run.id).data.tags["dslc.git.dirty"] == "false"


def test_failed_run_keeps_everything_and_is_marked_failed(tproj: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"), tracking.run(params={"a": 1}) as run:
        for step in range(10):
            run.log_metric("loss", step, step=step)
        raise RuntimeError("boom " + "x" * 5000)
    stored = run_data(run.id)
    assert stored.info.status == "FAILED"
    assert stored.data.params == {"a": "1"}
    assert len(client().get_metric_history(run.id, "loss")) == 10
    error = stored.data.tags["dslc.error"]
    assert error.startswith("RuntimeError: boom xxx") and len(error) <= 1000
    assert tracking.active() is None and mlflow.active_run() is None


def test_sys_exit_zero_is_a_normal_end(tproj: Path) -> None:
    with pytest.raises(SystemExit), tracking.run() as run:
        run.log_metric("m", 1)
        sys.exit(0)
    stored = run_data(run.id)
    assert stored.info.status == "FINISHED" and "dslc.error" not in stored.data.tags
    assert stored.data.metrics == {"m": 1.0}


# -- the command that started the run --------------------------------------------------


def _main_module(monkeypatch: pytest.MonkeyPatch, spec_name: str | None) -> None:
    main = types.ModuleType("__main__")
    main.__spec__ = importlib.machinery.ModuleSpec(spec_name, None) if spec_name else None
    monkeypatch.setitem(sys.modules, "__main__", main)


@pytest.mark.parametrize(
    ("argv", "spec", "expected"),
    [
        (["/x/src/demo/train.py", "--C", "0.5"], "demo.train", "python -m demo.train --C 0.5"),
        (["/x/src/demo/__main__.py"], "demo.__main__", "python -m demo"),
        (["{root}/scripts/fit.py", "--name", "a b"], None, "python scripts/fit.py --name 'a b'"),
        (["/elsewhere/tool.py"], None, "python /elsewhere/tool.py"),
        (["-c", "--flag"], None, None),
        ([""], None, None),
    ],
)
def test_entry_point(
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    spec: str | None,
    expected: str | None,
) -> None:
    from dslc.tracking import _context

    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    # Another test of the session may have imported ipykernel, which marks a notebook.
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    monkeypatch.setattr(sys, "argv", [a.replace("{root}", str(project)) for a in argv])
    _main_module(monkeypatch, spec)
    assert _context.source(project).entry_point == expected


def test_entry_point_of_a_notebook(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dslc.tracking import _context

    monkeypatch.setenv("JPY_SESSION_NAME", str(project / "notebooks" / "01-explore.ipynb"))
    assert _context.source(project).entry_point == "notebooks/01-explore.ipynb"


def test_python_m_run_is_tagged_with_its_command(tproj: Path) -> None:
    (tproj / "src" / "demo" / "__init__.py").write_text("", encoding="utf-8")
    (tproj / "src" / "demo" / "train.py").write_text(
        "from dslc import tracking\nwith tracking.run() as r:\n    print(r.id)\n", encoding="utf-8"
    )
    proc = subprocess.run(
        [PY, "-m", "demo.train", "--C", "0.5"], cwd=tproj / "notebooks", capture_output=True,
        text=True, timeout=300, check=False, env={**os.environ, "PYTHONPATH": str(tproj / "src")},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    tags = run_data(proc.stdout.strip().splitlines()[-1]).data.tags
    assert tags["dslc.entry_point"] == "python -m demo.train --C 0.5"
