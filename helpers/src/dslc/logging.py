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
    "numexpr", "PIL", "py4j", "s3fs", "s3transfer", "sqlalchemy", "urllib3",
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
        except Exception:
            self.handleError(record)


def _file_handler(log_file: str | Path, source: str) -> logging.FileHandler:
    """A handler on ``log_file`` (relative to the project root, else the working folder),
    opened now: a bad path is one clear error at setup, not a traceback mid-run."""
    path = Path(log_file).expanduser()
    if not path.is_absolute():
        from .config import project_root

        try:
            path = project_root() / path
        except ProjectNotFoundError:
            path = path.absolute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and not path.is_file():  # opening a FIFO would wait for a reader
            raise OSError(f"{path} is not a regular file")
        return logging.FileHandler(path, encoding="utf-8")
    except (OSError, ValueError) as exc:  # ValueError: a NUL character
        reason = getattr(exc, "strerror", None) or exc
        raise ConfigError(
            f"cannot write the log file {str(path)!r}{source}: {reason}; choose a writable path"
        ) from None


def _scrubbed(record: logging.LogRecord) -> bool:
    """Every line dslc's handlers write, whoever logged it, without secrets (_secrets)."""
    from ._secrets import scrub

    record.msg, record.args = scrub(record.getMessage()), None
    return True


def setup_logging(
    level: str | int | None = None,
    log_file: str | Path | None = None,
    force: bool = False,
) -> None:
    """Configure console (stderr) and optional file logging on the root logger.

    Safe to call repeatedly: dslc's own handlers are replaced, never duplicated; ``force``
    also removes others'. Defaults and one-line errors: helpers/README.md (Logging).
    """
    level_from = file_from = ""
    if level is None:
        level, level_from = os.environ.get(_LEVEL_ENV) or "INFO", f" (from {_LEVEL_ENV})"
    if log_file is None and os.environ.get(_FILE_ENV):
        log_file, file_from = os.environ[_FILE_ENV], f" (from {_FILE_ENV})"
    number = level if isinstance(level, int) else logging.getLevelName(level.strip().upper())
    if not isinstance(number, int):
        raise ConfigError(
            f"unknown log level {str(level)[:40]!r}{level_from}; use one of DEBUG, INFO, "
            "WARNING, ERROR, CRITICAL"
        )
    console = _ConsoleHandler()
    console.setFormatter(logging.Formatter(_CONSOLE_FORMAT, datefmt="%H:%M:%S"))
    handlers: list[logging.Handler] = [console]
    if log_file is not None:
        handlers.append(_file_handler(log_file, file_from))
        handlers[1].setFormatter(logging.Formatter(_FILE_FORMAT))
    root = logging.getLogger()
    with _lock:
        for h in [h for h in root.handlers if force or getattr(h, _MARK, False)]:
            root.removeHandler(h)
            h.close()
        for h in handlers:
            setattr(h, _MARK, True)
            h.addFilter(_scrubbed)
            root.addHandler(h)
        root.setLevel(number)
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
