from __future__ import annotations

import importlib
import logging
import os
import sys
import types
from pathlib import Path

import pytest

import dslc.logging as dlog
from dslc import cli, get_logger, setup_logging
from dslc.errors import ConfigError


def _ours() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if getattr(h, "_dslc_handler", False)]


def test_setup_is_idempotent_and_reload_safe(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging()
    setup_logging()
    assert len(_ours()) == 1
    importlib.reload(dlog)  # a notebook re-running its imports
    dlog.setup_logging()
    assert len(_ours()) == 1
    get_logger("dslc.test").info("hello")
    err = capsys.readouterr().err
    assert err.count("hello") == 1
    assert "INFO    dslc.test: hello" in err


def test_level_from_env(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DSLC_LOG_LEVEL", "warning")
    setup_logging()
    log = get_logger("dslc.test")
    log.info("quiet")
    log.warning("loud")
    err = capsys.readouterr().err
    assert "quiet" not in err and "loud" in err
    monkeypatch.setenv("DSLC_LOG_LEVEL", "chatty")
    with pytest.raises(ConfigError, match="unknown log level"):
        setup_logging()


def test_log_file_relative_to_project_root(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project / "notebooks")
    setup_logging(log_file="logs/run.log")
    get_logger("dslc.test").info("to file")
    for h in _ours():
        h.flush()
    assert "to file" in (project / "logs" / "run.log").read_text()
    monkeypatch.setenv("DSLC_LOG_FILE", "logs/env.log")
    setup_logging(force=True)
    assert len(_ours()) == 2  # console + file, the old ones replaced
    get_logger("dslc.test").info("via env")
    for h in _ours():
        h.flush()
    assert "via env" in (project / "logs" / "env.log").read_text()


def test_noisy_loggers_quietened() -> None:
    setup_logging("DEBUG")
    for name in ("mlflow", "urllib3", "fsspec"):
        assert logging.getLogger(name).level == logging.WARNING
    assert logging.getLogger().level == logging.DEBUG


def test_writes_through_tqdm_when_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[str] = []

    class FakeTqdm:
        @staticmethod
        def write(msg: str, file: object = None) -> None:
            written.append(msg)

    monkeypatch.setitem(sys.modules, "tqdm", types.SimpleNamespace(tqdm=FakeTqdm))
    setup_logging()
    get_logger("dslc.test").warning("between bars")
    assert any("between bars" in m for m in written)


def test_get_logger_configures_lazily_and_names_caller() -> None:
    root = logging.getLogger()
    for h in _ours():
        root.removeHandler(h)
    saved = [h for h in root.handlers if not type(h).__module__.startswith("_pytest")]
    for h in saved:
        root.removeHandler(h)
    try:
        log = get_logger()
        assert log.name == __name__
        assert len(_ours()) == 1
        get_logger("again")
        assert len(_ours()) == 1
    finally:
        for h in saved:
            root.addHandler(h)


def test_respects_logging_configured_by_the_application() -> None:
    root = logging.getLogger()
    for h in _ours():
        root.removeHandler(h)
    app = logging.StreamHandler()
    root.addHandler(app)
    try:
        get_logger("x")
        assert _ours() == []
    finally:
        root.removeHandler(app)


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("level", ["BOGUS", "-1", "1e3", "debugg", "INFO;rm -rf /", "²"])
def test_bad_log_level_is_one_line(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], level: str
) -> None:
    monkeypatch.setenv("DSLC_LOG_LEVEL", level)
    code, out, err = _cli(capsys, "info")
    assert (code, out) == (1, "")
    assert err.startswith("dslc: error: unknown log level") and "DSLC_LOG_LEVEL" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    "where",
    ["{dir}", "{file}/sub.log", "/proc/dslc-no-such/x.log", "/sys/dslc.log", "{dir}/\x00.log"],
)
def test_unwritable_log_file_is_one_line(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    path = where.format(dir=project / "data", file=project / "pyproject.toml")
    if "\x00" in path:
        monkeypatch.setattr(os, "environ", {**os.environ, "DSLC_LOG_FILE": path})
    else:
        monkeypatch.setenv("DSLC_LOG_FILE", path)
    code, out, err = _cli(capsys, "info")
    assert (code, out) == (1, "")
    assert err.startswith("dslc: error: ") and "DSLC_LOG_FILE" in err and err.count("\n") == 1
