"""dslc: data-science lifecycle helpers for projects made from ds-template.

``from dslc import data, tracking, get_logger``. Submodules load on first access, so
``import dslc`` stays cheap: it imports none of mlflow, pandas, pyarrow, fsspec or yaml.
"""

from __future__ import annotations

import importlib

# Not `from typing import TYPE_CHECKING`: importing typing is a measurable share of this
# module's tiny import time. Type checkers treat a module-level TYPE_CHECKING = False alike.
TYPE_CHECKING = False
if TYPE_CHECKING:  # for type checkers and IDEs only; runtime access goes through __getattr__
    from typing import Any

    from . import checks, config, data, errors, tracking
    from .logging import get_logger, setup_logging

__all__ = ["checks", "config", "data", "errors", "get_logger", "setup_logging", "tracking"]

# Public names that live in a submodule: name -> module. Every other name in __all__ is a
# submodule, so __all__ stays the one list.
_ATTRS = {"get_logger": "logging", "setup_logging": "logging"}
_SUBMODULES = frozenset(__all__) - _ATTRS.keys()


def __getattr__(name: str) -> Any:
    # PEP 562: resolve submodules and re-exported names on first access, then cache them
    # in the module namespace so later lookups are plain attribute reads.
    if name in _SUBMODULES:
        value: Any = importlib.import_module(f"{__name__}.{name}")
    elif name in _ATTRS:
        value = getattr(importlib.import_module(f"{__name__}.{_ATTRS[name]}"), name)
    elif name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("dslc")
        except PackageNotFoundError:  # a source tree that was never installed
            value = "0+unknown"
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | {"__version__"})
