from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from conftest import age

from dslc import cli, config


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


def test_data_add_takes_a_folder_named_like_a_dataset(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder right under data/ has a name without '/' or '.': it is still a path (it was
    once looked up as a catalog name, and the add failed)."""
    (project / "data" / "images").mkdir()
    (project / "data" / "images" / "a.png").write_bytes(b"png")
    code, out, err = run(capsys, "data", "add", "images", "images")
    assert (code, err.count("error")) == (0, 0), err
    assert out.startswith("recorded images: images sha256:")
    code, out, err = run(capsys, "data", "verify")
    assert code == 0 and "images" not in out and "images" in err  # checked, and ok


def test_verify_reports_changed_and_lost(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
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
    assert lines[1].startswith(f"lost: b (gone from {project / 'data' / 'interim' / 'b.csv'};")


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
        (["data", "add", "x", "raw/iris.csv", "--parent", "ghost"], "parent 'ghost' is not in"),
        (["data", "add", "x", "raw/iris.csv", "--parent", "x"], "cycle: x -> x"),
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


def _pretend_mlflow(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[str], dict[str, str]]]:
    """Pretend mlflow is installed and record its exec (command line, environment)."""
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: object() if n == "mlflow" else real(n, *a)
    )
    started: list[tuple[list[str], dict[str, str]]] = []
    monkeypatch.setattr(os, "execve", lambda path, args, env: started.append((list(args), env)))
    return started


def test_ui_runs_mlflow_ui_with_one_worker_on_the_projects_store(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    started = _pretend_mlflow(monkeypatch)
    monkeypatch.delenv("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", raising=False)
    monkeypatch.setenv("MLFLOW_BACKEND_STORE_URI", "postgresql://elsewhere/db")
    port = _free_port()
    code, _, err = run(capsys, "ui", "--port", str(port))
    assert code == 0, err
    [(cmd, env)] = started
    assert cmd == [sys.executable, "-m", "mlflow", "ui", "--host", "127.0.0.1",
                   "--port", str(port), "--workers", "1"]  # fmt: skip
    assert env["MLFLOW_BACKEND_STORE_URI"] == f"sqlite:///{project.as_posix()}/mlflow.db"
    assert env["MLFLOW_DEFAULT_ARTIFACT_ROOT"] == (project / "mlartifacts").as_uri()
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert env["PYTHONWARNINGS"].endswith("ignore:starlette.middleware.wsgi is deprecated")


def test_ui_prints_the_address_of_the_projects_runs(
    tproj: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """MLflow's UI opens an experiment on its GenAI overview unless the address asks for
    the machine-learning view: the printed address does, on the project's experiment."""
    from dslc import tracking

    monkeypatch.chdir(tproj)
    port = _free_port()
    started = _pretend_mlflow(monkeypatch)
    code, _, err = run(capsys, "ui", "--port", str(port))  # no experiment yet
    assert (
        code == 0 and f"http://127.0.0.1:{port}/#/experiments?workflowType=machine_learning" in err
    )
    with tracking.run("r") as r:
        pass
    code, _, err = run(capsys, "ui", "--port", str(port))
    page = f"http://127.0.0.1:{port}/#/experiments/{r.experiment_id}?workflowType=machine_learning"
    assert code == 0 and page in err, err
    assert len(started) == 2


def test_ui_keeps_a_database_password_off_the_command_line(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    started = _pretend_mlflow(monkeypatch)
    uri = "postgresql+psycopg://mlflow:Pw-0f-the-store@127.0.0.1:5432/mlflow"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "true")  # a choice is kept
    code, _, err = run(capsys, "ui", "--port", str(_free_port()))
    [(cmd, env)] = started
    assert code == 0 and "Pw-0f-the-store" not in " ".join(cmd) + err
    assert env["MLFLOW_BACKEND_STORE_URI"] == uri
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "true"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("port", ["99999", "0", "-1", "abc", "", "65536", "1e3", "80.5", "0x50"])
def test_ui_bad_port_is_one_line(
    project: Path, capsys: pytest.CaptureFixture[str], port: str
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["ui", "--port", port])
    out, err = capsys.readouterr()
    assert exit_.value.code == 2 and out == ""
    assert err.startswith("dslc: error: argument --port: must be a port number from 1 to 65535")
    assert err.count("\n") == 1


def test_ui_port_in_use_or_bad_host_is_one_line(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    started = _pretend_mlflow(monkeypatch)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        code, _, err = run(capsys, "ui", "--port", str(busy.getsockname()[1]))
    assert code == 1 and "cannot listen on 127.0.0.1:" in err and err.count("\n") == 1
    code, _, err = run(capsys, "ui", "--host", "no-such-host.invalid")
    assert code == 1 and "cannot use host 'no-such-host.invalid'" in err
    with pytest.raises(SystemExit):
        cli.main(["ui", "--host", "a b"])
    assert capsys.readouterr().err.startswith("dslc: error: argument --host:")
    assert started == [], "mlflow must not start"


@pytest.mark.slow
def test_ui_really_serves_the_store(project: Path) -> None:
    pytest.importorskip("mlflow")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dslc.cli", "ui", "--port", str(port)],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        body = ""
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(
                    f"{base}/ajax-api/2.0/mlflow/experiments/search?max_results=5", timeout=10
                ) as resp:
                    body = resp.read().decode()
                break
            except OSError:
                time.sleep(0.2)
        assert '"experiments"' in body, proc.stderr.read() if proc.poll() is not None else body
        with urllib.request.urlopen(base + "/", timeout=30) as resp:
            assert resp.status == 200 and "<html" in resp.read().decode().lower()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert (project / "mlflow.db").exists()


def test_ui_without_mlflow_is_one_line(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "mlflow" else real(n, *a)
    )
    code, _, err = run(capsys, "ui")
    assert code == 1 and "pip install 'dslc[tracking]'" in err


def test_ctrl_c_exits_130(project: Path) -> None:
    pytest.importorskip("aiohttp")  # fsspec's http driver, which the command waits in
    with socket.socket() as server:  # accepts the command's request, never answers it
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(60)
        url = f"http://127.0.0.1:{server.getsockname()[1]}/a.csv"
        proc = subprocess.Popen(
            [sys.executable, "-m", "dslc.cli", "data", "add", "a", url],
            cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        connection, _ = server.accept()  # the command now waits for an answer
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        connection.close()
    assert proc.returncode == 130 and err.splitlines()[-1] == "dslc: interrupted"


def test_console_script_is_fast_and_light(project: Path) -> None:
    code = (
        "import sys; from dslc import cli; rc = cli.main(['info']);"
        "print(sorted(m for m in ('pandas', 'pyarrow', 'mlflow', 'yaml', 'fsspec')"
        " if m in sys.modules), file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "[]"


def test_verify_on_a_fresh_project_passes(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "data" / "raw" / "iris.csv").unlink()  # not acquired yet either
    (project / "data" / "catalog.yml").write_text(
        "datasets:\n  iris:\n    location: raw/iris.csv\n"
        "  train:\n    location: processed/train.parquet\n    parents: [iris]\n"
        "  parts:\n    location: processed/parts\n    format: parquet\n"
    )
    code, out, err = run(capsys, "data", "verify")
    assert code == 0, out
    assert out.splitlines() == [
        f"not built yet: iris ({project / 'data' / 'raw' / 'iris.csv'})",
        f"not built yet: train ({project / 'data' / 'processed' / 'train.parquet'})",
        f"not built yet: parts ({project / 'data' / 'processed' / 'parts'})",
    ]
    assert "3 not built yet" in err


def test_verify_lost_raw_and_recorded_outputs_fail(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "data", "add", "iris", "raw/iris.csv", "--replace")
    (project / "data" / "raw" / "iris.csv").unlink()
    code, out, _ = run(capsys, "data", "verify")
    assert code == 1 and out.startswith("lost: iris (gone from ")


def test_verify_sees_content_hidden_behind_an_old_mtime(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = project / "data" / "raw" / "iris.csv"
    age(f)
    run(capsys, "data", "add", "iris", "raw/iris.csv", "--replace")
    st = f.stat()
    f.write_text(f.read_text().replace("5.1", "5.2"))
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # touch -r: size and mtime as before
    for argv in (["data", "verify"], ["data", "verify", "--fast"]):
        code, out, _ = run(capsys, *argv)
        assert code == 1 and out.startswith("changed: iris"), argv


def test_verify_full_does_not_trust_a_lying_cache(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    f = project / "data" / "raw" / "iris.csv"
    age(f)
    run(capsys, "data", "add", "iris", "raw/iris.csv", "--replace")
    f.write_text(f.read_text().replace("5.1", "5.2"))
    age(f)
    cache = project / ".dslc" / "fingerprints.json"
    doc = json.loads(cache.read_text())
    recorded = yaml.safe_load((project / "data" / "catalog.yml").read_text())
    st = f.stat()
    stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
    doc["sha256-v3"][str(f)] = [stamp, recorded["datasets"]["iris"]["fingerprint"]]
    cache.write_text(json.dumps(doc))  # the cache now claims the old content
    assert run(capsys, "data", "verify", "--fast")[0] == 0  # fast: trusts the cache
    code, out, _ = run(capsys, "data", "verify")  # the default re-hashes
    assert code == 1 and out.startswith("changed: iris")


@pytest.mark.slow
def test_verify_does_not_hang_on_a_fifo(project: Path) -> None:
    parts = project / "data" / "processed" / "parts"
    parts.mkdir(parents=True)
    (parts / "a.csv").write_text("a\n1\n")
    (project / "data" / "catalog.yml").write_text(
        "datasets:\n  parts:\n    location: processed/parts\n    format: csv\n"
        "  pipe:\n    location: interim/pipe.csv\n"
    )
    os.mkfifo(parts / "fifo")
    os.mkfifo(project / "data" / "interim" / "pipe.csv")
    proc = subprocess.run(
        [sys.executable, "-m", "dslc.cli", "data", "verify"],
        cwd=project, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("error: parts (") and "is a FIFO (named pipe)" in lines[0]
    assert lines[1].startswith("error: pipe (") and "is a FIFO" in lines[1]


@pytest.mark.parametrize(
    "argv",
    [
        ["data", "add", "x", "raw/ir\x00is.csv"],
        ["data", "add", "x\x00", "raw/iris.csv"],
        ["data", "add", "x", "raw/iris.csv", "--description", "a\x00b"],
        ["data", "add", "x", "raw/iris.csv", "--format", "c\x00sv"],
    ],
)
def test_nul_in_arguments_is_one_line(
    project: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    before = (project / "data" / "catalog.yml").read_text()
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    _, err = capsys.readouterr()
    assert exit_.value.code == 2
    assert err.startswith("dslc: error: argument ") and "NUL character" in err
    assert err.count("\n") == 1
    assert (project / "data" / "catalog.yml").read_text() == before


def test_unexpected_errors_are_one_line(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom(root: object) -> str:
        raise ValueError("odd\nthing at http://u:hunter2@host/x")

    # No input makes dslc fail unexpectedly (that would be a bug to fix): a public
    # function that `info` calls stands in for the bug.
    monkeypatch.setattr(config, "project_name", boom)
    code, _, err = run(capsys, "info")
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("dslc: error: unexpected ValueError: odd thing")
    assert "hunter2" not in err and "DSLC_DEBUG=1" in err
    monkeypatch.setenv("DSLC_DEBUG", "1")
    with pytest.raises(ValueError):
        cli.main(["info"])
