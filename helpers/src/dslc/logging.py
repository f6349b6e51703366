"""Logging configured once: readable console lines, optional file, tqdm-friendly."""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path

from .errors import ConfigError, ProjectNotFoundError

__all__ = ["get_logger", "setup_logging"]

_LEVEL_ENV = "DSLC_LOG_LEVEL"
_FILE_ENV = "DSLC_LOG_FILE"
# dslc's handlers carry this attribute: after importlib.reload (a notebook) their class is
# a new one, and isinstance would miss the old handler and stack a duplicate.
_MARK = "_dslc_handler"
_CONSOLE_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_FILE_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [%(process)d]: %(message)s"
# Chatty at INFO/DEBUG and rarely what a data scientist wants to read.
_NOISY_LOGGERS = (
    "alembic", "asyncio", "boto3", "botocore", "fsspec", "git", "httpx", "matplotlib", "mlflow",
    "numexpr", "PIL", "s3fs", "s3transfer", "sqlalchemy", "urllib3",
)  # fmt: skip
_lock = threading.Lock()


class _ConsoleHandler(logging.Handler):
    """Writes to the *current* ``sys.stderr`` (notebooks and pytest swap it), through
    ``tqdm.write`` when tqdm is loaded, so log lines do not tear progress bars."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = self.format(record)
            tqdm = getattr(sys.modules.get("tqdm"), "tqdm", None)  # if the user imported it
            if tqdm is not None:
                tqdm.write(msg, file=sys.stderr)
            else:
                sys.stderr.write(msg + "\n")
                sys.stderr.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)


class _FileHandler(logging.FileHandler):
    """A file handler that reports a failing write in one line, once, not a traceback."""

    _reported = False

    def handleError(self, record: logging.LogRecord) -> None:
        if self._reported:
            return
        self._reported = True
        exc = sys.exc_info()[1]
        reason = getattr(exc, "strerror", None) or exc
        sys.stderr.write(f"dslc: cannot write the log file {self.baseFilename}: {reason}\n")


def _parse_level(level: str | int, source: str = "") -> int:
    if isinstance(level, int) and not isinstance(level, bool):
        return level
    text = str(level).strip().upper()
    if text.isdecimal():  # not isdigit: int() refuses "²"
        return int(text)
    number = logging.getLevelName(text)  # a known name's number, else the text "Level ..."
    if not isinstance(number, int):
        raise ConfigError(
            f"unknown log level {str(level)[:40]!r}{source}; use one of DEBUG, INFO, WARNING, "
            "ERROR, CRITICAL"
        )
    return number


def _resolve_log_file(log_file: str | Path, source: str = "") -> Path:
    path = Path(log_file).expanduser()
    if not path.is_absolute():
        from .config import project_root

        try:
            base = project_root()
        except ProjectNotFoundError:
            base = Path.cwd()
        path = base / path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Open now, not at the first record: a bad path is one clear error at setup, not
        # a "--- Logging error ---" traceback in the middle of a run.
        with open(path, "a", encoding="utf-8"):
            pass
    except (OSError, ValueError) as exc:  # ValueError: a NUL character
        reason = getattr(exc, "strerror", None) or exc
        raise ConfigError(
            f"cannot write the log file {str(path)!r}{source}: {reason}; choose a writable path"
        ) from None
    return path


def setup_logging(
    level: str | int | None = None,
    log_file: str | Path | None = None,
    force: bool = False,
) -> None:
    """Configure console (stderr) and optional file logging on the root logger.

    Safe to call repeatedly: dslc's own handlers are replaced, never duplicated. ``level``
    defaults to ``DSLC_LOG_LEVEL`` or INFO, ``log_file`` to ``DSLC_LOG_FILE`` (relative to
    the project root, else the working directory); ``force`` also removes handlers others
    installed. A bad level or an unwritable log file is a one-line ConfigError, naming
    the variable it came from.
    """
    level_from = file_from = ""
    if level is None:
        level, level_from = os.environ.get(_LEVEL_ENV) or "INFO", f" (from {_LEVEL_ENV})"
    if log_file is None and os.environ.get(_FILE_ENV):
        log_file, file_from = os.environ[_FILE_ENV], f" (from {_FILE_ENV})"
    lvl = _parse_level(level, level_from)
    file_path = None if log_file is None else _resolve_log_file(log_file, file_from)
    root = logging.getLogger()
    with _lock:
        for h in [h for h in root.handlers if force or getattr(h, _MARK, False)]:
            root.removeHandler(h)
            h.close()
        console = _ConsoleHandler()
        console.setFormatter(logging.Formatter(_CONSOLE_FORMAT, datefmt="%H:%M:%S"))
        handlers: list[logging.Handler] = [console]
        if file_path is not None:
            fh = _FileHandler(file_path, encoding="utf-8", delay=True)
            fh.setFormatter(logging.Formatter(_FILE_FORMAT))
            handlers.append(fh)
        for h in handlers:
            setattr(h, _MARK, True)
            root.addHandler(h)
        root.setLevel(lvl)
        for name in _NOISY_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)


def get_logger(name: str | None = None) -> logging.Logger:
    """Return the logger ``name`` (default: the calling module's ``__name__``).

    Configures logging with defaults unless the root logger has a handler already: dslc's
    own, or the application's (its setup is respected). pytest's capture handlers, which
    print nothing, do not count.
    """
    if name is None:
        name = sys._getframe(1).f_globals.get("__name__", "dslc")
    if all(type(h).__module__.startswith("_pytest") for h in logging.getLogger().handlers):
        setup_logging()
    return logging.getLogger(name)
