"""A new user's first day in a generated project: no surprises from its everyday commands.

`make help` shows real addresses; `make clean` spares `.venv`; `make lab` serves JupyterLab
on loopback with the project's kernel; `make test` leaves the project as it was; `dslc
mlflow` commands from any folder use the project's store, and nothing of dslc runs when
Python starts; `make update` explains what to do instead of failing with a traceback.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.generated import bake_cli, commit_all, sh, template_git_copy
from tests.servers import background, free_port

ANSWERS = {"project_name": "Demo Project", "project_slug": "demo-project", "ci": "none"}


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """A project as its author has it after `make setup`, nothing run in it yet."""
    project = bake_cli(tmp_path_factory.mktemp("fresh"), ci="none")
    setup = sh("make setup", project)
    return project, setup.stdout + setup.stderr


@pytest.mark.slow
def test_make_setup_is_quiet_on_success(fresh):
    _, printed = fresh
    lines = printed.strip().splitlines()
    assert len(lines) <= 20, "\n".join(lines)
    assert "uv.lock pins every package version" in printed, "its advice still shows"


def test_make_help_shows_the_addresses_in_force(bake):
    project = bake()
    listing = sh("make help", project).stdout
    assert "$(" not in listing, listing
    assert re.search(r"^\s+serve\s.*127\.0\.0\.1:5001$", listing, re.MULTILINE), listing
    assert re.search(r"^\s+lab\s.*http://127\.0\.0\.1:8888$", listing, re.MULTILINE), listing
    assert re.search(r"^\s+ui\s.*http://127\.0\.0\.1:5000$", listing, re.MULTILINE), listing
    moved = sh("make help HOST=0.0.0.0 SERVE_PORT=9000 LAB_PORT=9999", project).stdout
    assert "0.0.0.0:9000" in moved and "http://0.0.0.0:9999" in moved


# -- make clean ----------------------------------------------------------------------


def _pycache_dirs(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("__pycache__") if path.is_dir()}


@pytest.mark.slow
def test_make_clean_removes_the_projects_caches_and_spares_venv(fresh):
    project, _ = fresh
    compiled = _pycache_dirs(project / ".venv")
    assert len(compiled) > 100, "bytecode in .venv (the tests set UV_COMPILE_BYTECODE=1)"
    ours = [project / "src" / "my_ds_project" / "__pycache__", project / "tests" / "__pycache__"]
    for folder in ours:
        folder.mkdir(exist_ok=True)
        (folder / "x.cpython-311.pyc").write_bytes(b"")
    for cache in (".pytest_cache", ".ruff_cache", "htmlcov"):
        (project / cache).mkdir(exist_ok=True)
    (project / ".coverage").write_text("")
    kept = [project / "data" / "raw" / "kept.csv", project / "models" / "kept.pkl"]
    for path in kept:
        path.write_text("kept\n")

    sh("make clean", project)

    assert _pycache_dirs(project / ".venv") == compiled
    assert not any(folder.exists() for folder in ours)
    for cache in (".pytest_cache", ".ruff_cache", "htmlcov", ".coverage"):
        assert not (project / cache).exists(), cache
    assert all(path.read_text() == "kept\n" for path in kept)
    for path in kept:
        path.unlink()


# -- make test ------------------------------------------------------------------------

# What the test tools keep between runs (pytest's last failures, coverage data); git
# ignores them and `make clean` removes them. Nothing else may appear or change.
TOOL_CACHES = {"!! .pytest_cache/", "!! .coverage"}
STATE = ("data", "models", "mlartifacts", "mlruns", "reports", ".dslc")


def _git_status(project: Path) -> set[str]:
    out = sh("git status --porcelain --ignored", project).stdout
    return {line for line in out.splitlines() if not line.startswith("!! .venv/")}


def _state(project: Path) -> dict[str, str]:
    """Content hashes of the data, the models, the MLflow store and the catalog."""
    files = [p for name in STATE for p in (project / name).rglob("*") if p.is_file()]
    files += [*project.glob("mlflow.db*"), project / "data" / "catalog.yml"]
    return {
        str(path.relative_to(project)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in files
    }


@pytest.mark.slow
def test_make_test_leaves_the_project_as_it_was(fresh):
    project, _ = fresh
    sh("rm -rf .pytest_cache .coverage", project)
    status, state = _git_status(project), _state(project)

    sh("make test", project)

    assert _state(project) == state, "make test changed the project's data or store"
    assert _git_status(project) - status == TOOL_CACHES
    assert status - _git_status(project) == set()


# -- make lab -------------------------------------------------------------------------


def _get(url: str, token: str = "", timeout: float = 5) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, b""
    except OSError:  # not listening (yet)
        return 0, b""


def _listening(port: int) -> set[str]:
    """Local addresses with a socket listening on `port` (Linux /proc/net/tcp*)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def _processes_with(text: str) -> dict[int, list[str]]:
    found = {}
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            argv = cmdline.read_bytes().decode().split("\0")
            if any(text in arg for arg in argv):
                found[int(cmdline.parent.name)] = argv
    return found


@pytest.mark.slow
def test_make_lab_serves_on_loopback_with_the_projects_kernel(fresh, tmp_path):
    project, _ = fresh
    port = free_port()
    log = tmp_path / "lab.log"
    # No --allow-root: CI runs as root, the usual case in a container, and make lab must
    # start there as it is.
    command = f"make lab LAB_PORT={port} LAB_ARGS=--no-browser"
    base = f"http://127.0.0.1:{port}"
    with background(command, project, f"{base}/api", log, timeout=240):
        printed = re.search(rf"{base}/lab/tree/notebooks\?token=(\w+)", log.read_text())
        assert printed, log.read_text()[-3000:]
        token = printed[1]

        assert _listening(port) == {"0100007F"}, "JupyterLab must listen on 127.0.0.1 only"
        assert _get(f"{base}/api/contents")[0] == 403, "no access without the token"
        status, body = _get(f"{base}/api/contents/notebooks", token)
        assert status == 200 and "01-yn-explore-example.ipynb" in body.decode()

        # Open the example as JupyterLab does: its kernel is the project's Python,
        # started in the notebook's folder.
        example = "notebooks/01-yn-explore-example.ipynb"
        session = {"path": example, "type": "notebook", "kernel": {"name": "python3"}}
        request = urllib.request.Request(
            f"{base}/api/sessions", data=json.dumps(session).encode(), method="POST",
            headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=30) as response:
            kernel_id = json.load(response)["kernel"]["id"]
        deadline = time.monotonic() + 60
        while not (kernels := _processes_with(f"kernel-{kernel_id}.json")):
            assert time.monotonic() < deadline, "the kernel process did not start"
            time.sleep(0.5)
        [(pid, argv)] = kernels.items()
        assert argv[0] == str(project / ".venv" / "bin" / "python"), argv
        assert Path(f"/proc/{pid}/cwd").resolve() == (project / "notebooks").resolve()
    assert _listening(port) == set()
    deadline = time.monotonic() + 20
    while _processes_with(f"kernel-{kernel_id}.json") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _processes_with(f"kernel-{kernel_id}.json"), "the kernel outlived make lab"


# -- mlflow commands ------------------------------------------------------------------


@pytest.mark.slow
def test_dslc_mlflow_commands_in_a_subfolder_use_the_projects_store(fresh):
    project, _ = fresh
    notebooks = project / "notebooks"
    sh("rm -rf mlflow.db mlartifacts", project)

    # The very first command, from notebooks/, makes the project's store, and right.
    first = sh("uv run dslc mlflow experiments search", notebooks).stdout
    assert (project / "mlflow.db").is_file()
    # dslc's runs never go to MLflow's Default experiment, which keeps MLflow's own default
    # location (no public route sets it); nothing is written there (no mlruns/ below).
    assert re.search(r"^0\s+Default\s", first, re.M), first
    create = "from dslc import tracking; tracking.client().create_experiment('churn')"
    sh(f'uv run python -c "{create}"', project)
    for folder in (notebooks, project / "src", project):
        listing = sh("uv run dslc mlflow experiments search", folder).stdout
        assert re.search(r"\bchurn\b", listing), f"{folder}: {listing}"
    strays = [p for p in project.rglob("mlflow.db") if p.parent != project]
    strays += [p for p in project.rglob("mlruns") if ".venv" not in p.parts]
    assert strays == []
    # No start-up hook: the dslc the project installed ships no .pth file at all.
    files = "import importlib.metadata as m; print([str(f) for f in m.files('dslc')])"
    assert ".pth'" not in sh(f'uv run python -c "{files}"', project).stdout


# -- make ui ---------------------------------------------------------------------------


@pytest.mark.slow
def test_make_ui_serves_the_projects_store_on_loopback_without_warnings(fresh, tmp_path):
    """`make ui` is `mlflow ui` with one worker on loopback: it answers, lists the
    project's experiments and prints no library deprecation noise."""
    project, _ = fresh
    port = free_port()
    log = tmp_path / "ui.log"
    started = time.monotonic()
    with background(
        f"make ui PORT={port}", project, f"http://127.0.0.1:{port}/health", log, timeout=180
    ):
        print(f"make ui answered after {time.monotonic() - started:.1f} s")
        assert _listening(port) == {"0100007F"}, "the UI must listen on 127.0.0.1 only"
        status, body = _get(
            f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/experiments/search?max_results=10",
            timeout=120,
        )
        assert status == 200 and b'"Default"' in body, body[:500]
    printed = log.read_text()
    assert "Warning" not in printed, printed[-3000:]


# -- make update ----------------------------------------------------------------------


def _cruft_create(template: Path, output_dir: Path) -> Path:
    from tests.test_cruft import cruft

    cruft(
        "create", "--no-input", "--config-file", os.environ["COOKIECUTTER_CONFIG"],
        "--output-dir", str(output_dir), "--extra-context", json.dumps(ANSWERS),
        str(template), cwd=output_dir,
    )  # fmt: skip
    project = output_dir / "demo-project"
    commit_all(project)
    return project


@pytest.mark.slow
def test_make_update_says_in_one_line_how_to_link_a_cookiecutter_project(tmp_path):
    template = template_git_copy(tmp_path / "ds-template")
    commit = sh("git rev-parse HEAD", template).stdout.strip()
    project = bake_cli(tmp_path, template=f"git+{template.as_uri()}", **ANSWERS)
    commit_all(project)

    failed = sh("make update", project, check=False)
    assert failed.returncode != 0 and "Traceback" not in failed.stdout + failed.stderr
    errors = failed.stderr.splitlines()
    assert len([line for line in errors if line.startswith("error:")]) == 1, failed.stderr
    assert errors[0].startswith("error: no .cruft.json"), failed.stderr
    # The command names the template and the commit the project was made from: run it.
    link = re.search(
        r"commit \.cruft\.json: (.+ cruft link --checkout (\w+) (\S+))  \(see ", errors[0]
    )
    assert link and (link[2], link[3]) == (commit, template.as_uri()), errors[0]
    answers = shlex.quote(json.dumps(ANSWERS))
    sh(f"{link[1]} --no-input --extra-context {answers}", project)
    sh("git add .cruft.json && git commit -q -m 'Link to ds-template'", project)
    assert "Nothing to update" in sh("make update", project).stdout


@pytest.mark.slow
def test_make_update_names_uncommitted_files_and_uv_lock(tmp_path, fresh):
    _, setup_output = fresh
    # The first-commit flow: make setup says to commit the uv.lock it wrote.
    assert "commit it with the project (git add --all && git commit)" in setup_output

    project = _cruft_create(template_git_copy(tmp_path / "ds-template"), tmp_path)
    (project / "uv.lock").write_text("version = 1\n")  # as `make setup` leaves it
    (project / "README.md").write_text((project / "README.md").read_text() + "Ours.\n")
    before = (project / ".cruft.json").read_text()

    failed = sh("make update", project, check=False)
    assert failed.returncode != 0
    [line] = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
    assert "commit or stash your changes first" in line
    assert "README.md uv.lock" in line and "uv.lock comes from make setup" in line, line
    assert (project / ".cruft.json").read_text() == before

    commit_all(project, "Lock and edit")
    assert "Nothing to update" in sh("make update", project).stdout
