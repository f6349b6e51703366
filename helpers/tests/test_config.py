from __future__ import annotations

import os
from pathlib import Path

import pytest

from dslc import config, data
from dslc.errors import ConfigError, DslcError, ProjectNotFoundError


def test_root_found_from_subfolders(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert config.project_root() == project
    for sub in ("notebooks", "src/demo", "data/raw"):
        monkeypatch.chdir(project / sub)
        assert config.project_root() == project
    assert config.project_root(project / "data" / "raw" / "iris.csv") == project


def test_pyproject_without_dslc_table_is_skipped(project: Path) -> None:
    inner = project / "src" / "demo"
    (inner / "pyproject.toml").write_text('[project]\nname = "inner"\n', encoding="utf-8")
    assert config.project_root(inner) == project


def test_outside_a_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ProjectNotFoundError) as err:
        config.project_root()
    msg = str(err.value)
    assert "\n" not in msg
    assert "ds-template" in msg and "DSLC_PROJECT_ROOT" in msg
    assert isinstance(err.value, DslcError)


def test_env_var_wins(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.setenv("DSLC_PROJECT_ROOT", str(other))
    assert config.project_root() == other.resolve()
    monkeypatch.setenv("DSLC_PROJECT_ROOT", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="DSLC_PROJECT_ROOT"):
        config.project_root()
    monkeypatch.setenv("DSLC_PROJECT_ROOT", str(project / "pyproject.toml"))
    with pytest.raises(ConfigError, match="not an existing folder"):
        config.project_root()


def test_invalid_pyproject_is_a_clear_error(project: Path) -> None:
    (project / "pyproject.toml").write_text("[tool.dslc\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="valid TOML"):
        config.project_root()


def test_load_env_from_notebooks_does_not_override(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / ".env").write_text("DSLC_T_NEW=from-file\nDSLC_T_SET=from-file\n", encoding="utf-8")
    monkeypatch.setenv("DSLC_T_SET", "from-env")
    monkeypatch.chdir(project / "notebooks")
    config.load_env()
    assert os.environ["DSLC_T_NEW"] == "from-file"
    assert os.environ["DSLC_T_SET"] == "from-env"
    os.environ["DSLC_T_NEW"] = "changed-by-user"
    config.load_env()  # idempotent: a second call changes nothing
    assert os.environ["DSLC_T_NEW"] == "changed-by-user"


def test_load_env_without_file(project: Path) -> None:
    config.load_env()  # no .env: nothing happens


def test_paths(project: Path) -> None:
    p = config.paths()
    assert not hasattr(p, "root")  # one name for the root: config.project_root()
    assert p.raw == project / "data" / "raw"
    assert p.interim == project / "data" / "interim"
    assert p.processed == project / "data" / "processed"
    assert p.external == project / "data" / "external"
    assert p.models == project / "models"
    assert p.figures == project / "reports" / "figures"
    assert p.catalog == project / "data" / "catalog.yml"
    with pytest.raises(AttributeError):
        p.raw = Path("/")  # type: ignore[misc]


def test_project_name_and_fallback(project: Path) -> None:
    assert config.project_name() == "demo-project"
    (project / "pyproject.toml").write_text("[tool.dslc]\n", encoding="utf-8")
    assert config.project_name() == "proj"
    assert config.settings() == {}


def test_tracking_uri_default_is_absolute(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project / "notebooks")
    assert config.tracking_uri() == f"sqlite:///{project.as_posix()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "  ")
    assert config.tracking_uri().endswith("/mlflow.db")


def test_tracking_uri_from_env_file_and_environment(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / ".env").write_text("MLFLOW_TRACKING_URI=http://127.0.0.1:5005\n", encoding="utf-8")
    assert config.tracking_uri() == "http://127.0.0.1:5005"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://server:80")
    assert config.tracking_uri() == "http://server:80"


def test_artifact_root_and_state_folder(project: Path) -> None:
    assert config.artifact_root() == (project / "mlartifacts").as_uri()
    data.fingerprint("iris")  # caches its answer in <root>/.dslc, which ignores itself in git
    state = project / ".dslc"
    assert (state / "fingerprints.json").is_file()
    assert (state / ".gitignore").read_text() == "*\n"


def test_config_does_not_import_mlflow() -> None:
    import subprocess
    import sys

    code = "import sys, dslc.config; print('mlflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
