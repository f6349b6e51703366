"""Exceptions raised by dslc: one line says what is wrong and how to fix it (no traceback)."""

__all__ = [
    "AssumptionError", "CatalogError", "ConfigError", "DatasetNotFoundError", "DslcError",
    "FormatError", "LocationError", "ProjectNotFoundError", "RawDataWriteError",
    "ReportError", "SpecialFileError", "SqlError", "UnsafePathError",
]  # fmt: skip


class DslcError(Exception):
    """Base class of every dslc error; ``str(err)`` is a single line."""

    def __init__(self, message: str) -> None:
        # One line wherever the text comes from (a wrapped OS or YAML message).
        super().__init__(" ".join(str(message).split()))


class ProjectNotFoundError(DslcError):
    """No project root: no ``pyproject.toml`` with ``[tool.dslc]`` above the start folder."""


class ConfigError(DslcError):
    """A setting is invalid (bad ``DSLC_PROJECT_ROOT``, unreadable ``pyproject.toml``...)."""


class CatalogError(DslcError):
    """``data/catalog.yml`` is malformed or an entry is invalid."""


class DatasetNotFoundError(DslcError):
    """A dataset name is not in the catalog, or its file does not exist."""


class FormatError(DslcError):
    """The data format is unknown, unsupported, or needs an optional package."""


class UnsafePathError(DslcError):
    """A path, or a URL that ends on the local disk, points outside the project."""


class LocationError(DslcError):
    """A location cannot be used: unknown protocol, missing fsspec driver, NUL character."""


class SpecialFileError(DslcError):
    """A FIFO, socket, device or broken link where a data file was expected."""


class RawDataWriteError(DslcError):
    """Refused to write under ``data/raw`` (raw data is immutable)."""


class SqlError(DslcError):
    """A SQL source cannot be read: variable, driver, login, server, table or query."""


class ReportError(DslcError):
    """A notebook could not be published: bad metadata, a failing cell, a missing tool."""


class AssumptionError(DslcError, AssertionError):
    """A data assumption failed; an AssertionError so pytest reports it as a failure."""
