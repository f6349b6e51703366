from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import age

from dslc import cli


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    import dslc

    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"dslc {dslc.__version__}"


def test_info(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "info")
    assert code == 0
    assert f"root       {project}" in out
    for key in ("raw", "interim", "processed", "external", "models", "figures", "catalog"):
        assert f"\n{key} " in out
    assert f"sqlite:///{project.as_posix()}/mlflow.db" in out
    assert "git" in out and "none" in out  # not a repository


def test_info_shows_git_state(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    code, out, _ = run(capsys, "info")
    assert code == 0
    assert "branch     main" in out and "dirty      no" in out


def test_outside_project_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "info")
    assert code == 1 and out == ""
    assert err.startswith("dslc: error: no dslc project found") and err.count("\n") == 1


def test_data_add_list_verify(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "data" / "interim" / "clean.csv").write_text("a\n1\n")
    code, out, _ = run(capsys, "data", "add", "clean", "data/interim/clean.csv",
                       "--parent", "iris", "--description", "cleaned")  # fmt: skip
    assert code == 0 and out.startswith("recorded clean: interim/clean.csv sha256:")
    run(capsys, "data", "add", "iris", "raw/iris.csv", "--replace")  # data/-relative path
    doc = yaml.safe_load((project / "data" / "catalog.yml").read_text())
    assert doc["datasets"]["clean"]["parents"] == ["iris"]
    assert doc["datasets"]["iris"]["description"] == "tiny iris sample"  # kept on replace

    code, out, _ = run(capsys, "data", "list")
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "FORMAT", "LOCATION", "FINGERPRINT", "DESCRIPTION"]
    assert lines[2].split()[:3] == ["clean", "csv", "interim/clean.csv"]
    assert lines[2].endswith("cleaned")

    code, out, err = run(capsys, "data", "verify")
    assert (code, out) == (0, "")
    assert "[1/2] iris" in err and "2 ok" in err


def test_verify_reports_changed_and_missing(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "data" / "interim" / "a.csv").write_text("a\n1\n")
    (project / "data" / "interim" / "b.csv").write_text("b\n1\n")
    for name in ("a", "b"):
        assert run(capsys, "data", "add", name, f"interim/{name}.csv")[0] == 0
    run(capsys, "data", "add", "iris", "raw/iris.csv", "--replace")
    (project / "data" / "interim" / "a.csv").write_text("a\n2\n")
    age(project / "data" / "interim" / "a.csv")
    (project / "data" / "interim" / "b.csv").unlink()
    code, out, _ = run(capsys, "data", "verify")
    assert code == 1
    lines = out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("changed: a (recorded sha256:") and ", now sha256:" in lines[0]
    assert lines[1] == f"missing: b ({project / 'data' / 'interim' / 'b.csv'})"


def test_verify_unrecorded_is_not_a_failure(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "data", "verify")
    assert code == 0 and out.startswith("unrecorded: iris")


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["data", "add", "bad.name", "raw/iris.csv"], "invalid dataset name"),
        (["data", "add", "x", "raw/absent.csv"], "does not exist"),
        (["data", "add", "x", "raw/iris.csv", "--parent", "ghost"], "ghost not in"),
        (["data", "add", "iris", "raw/iris.csv"], "--replace"),
        (["data", "add", "x", "raw/iris.csv", "--format", "hdf"], "unknown format"),
        (["data", "add", "x", "../../outside.csv"], "outside the project"),
    ],
)
def test_data_add_errors(
    project: Path, capsys: pytest.CaptureFixture[str], argv: list[str], match: str
) -> None:
    before = (project / "data" / "catalog.yml").read_text()
    code, out, err = run(capsys, *argv)
    assert (code, out) == (1, "")
    assert err.startswith("dslc: error: ") and match in err
    assert err.count("\n") == 1
    assert (project / "data" / "catalog.yml").read_text() == before


def test_malformed_catalog_cli(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "data" / "catalog.yml").write_text("datasets:\n  x: 1\n")
    code, _, err = run(capsys, "data", "list")
    assert code == 1 and "dataset 'x': expected a mapping" in err


def test_ui_server_uri_is_printed(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    code, out, _ = run(capsys, "ui")
    assert code == 0 and "http://127.0.0.1:5999" in out


def test_ui_runs_mlflow_on_embedded_store(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(  # pretend mlflow is installed: the command is not run anyway
        importlib.util, "find_spec", lambda n, *a: object() if n == "mlflow" else real(n, *a)
    )
    seen: list[list[str]] = []
    monkeypatch.setattr(cli.subprocess, "call", lambda cmd: seen.append(cmd) or 0)
    code, _, _ = run(capsys, "ui", "--port", "5123")
    assert code == 0
    cmd = seen[0]
    assert cmd[1:4] == ["-m", "mlflow", "ui"]
    assert cmd[cmd.index("--backend-store-uri") + 1] == f"sqlite:///{project.as_posix()}/mlflow.db"
    assert cmd[cmd.index("--default-artifact-root") + 1] == (project / "mlartifacts").as_uri()
    assert cmd[cmd.index("--port") + 1] == "5123" and "127.0.0.1" in cmd


def test_ui_without_mlflow_is_one_line(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "mlflow" else real(n, *a)
    )
    code, _, err = run(capsys, "ui")
    assert code == 1 and "pip install 'dslc[tracking]'" in err


def test_keyboard_interrupt_exits_130(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_cmd_info", interrupted)
    code, _, err = run(capsys, "info")
    assert code == 130 and err.strip() == "dslc: interrupted"


def test_console_script_is_fast_and_light(project: Path) -> None:
    code = (
        "import sys; from dslc import cli; rc = cli.main(['info']);"
        "print(sorted(m for m in ('pandas', 'pyarrow', 'mlflow', 'yaml', 'fsspec')"
        " if m in sys.modules), file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "[]"
