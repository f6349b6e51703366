"""`import dslc` must stay light: heavy libraries load on first use only."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

HEAVY = ("mlflow", "pandas", "pyarrow", "sklearn", "pandera", "fsspec", "yaml", "numpy", "pydantic")


def _loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return out.stdout.split()


@pytest.mark.parametrize(
    "code",
    [
        "import dslc",
        "from dslc import data, get_logger, config, checks",
        "import dslc; dslc.__version__",
    ],
)
def test_import_is_light(code: str) -> None:
    assert _loaded_after(code) == []


def test_version_from_metadata() -> None:
    """dslc.__version__ is the installed one, and that is the version in pyproject.toml."""
    import dslc

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    declared = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]
    assert dslc.__version__ == version("dslc") == declared


def test_lazy_attributes() -> None:
    import dslc

    assert dslc.data.load is not None
    assert callable(dslc.get_logger) and callable(dslc.setup_logging)
    assert issubclass(dslc.errors.DslcError, Exception)
    assert not hasattr(dslc, "DslcError")  # one name for each thing: dslc.errors.DslcError
    assert "data" in dir(dslc) and "tracking" in dir(dslc)
    with pytest.raises(AttributeError):
        dslc.nonexistent  # noqa: B018
