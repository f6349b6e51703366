"""dslc: data-science lifecycle helpers for projects made from ds-template.

``from dslc import data, tracking, get_logger``. Submodules load on first access (PEP 562),
so ``import dslc`` stays cheap: it imports none of mlflow, pandas, pyarrow, fsspec or yaml.
"""

from __future__ import annotations

import importlib

# Not `from typing import TYPE_CHECKING`: importing typing is a measurable share of this
# module's tiny import time. Type checkers treat a module-level TYPE_CHECKING = False alike.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from . import checks, config, data, errors, tracking
    from .logging import get_logger, setup_logging

__all__ = ["checks", "config", "data", "errors", "get_logger", "setup_logging", "tracking"]


def __getattr__(name: str) -> Any:
    if name in ("get_logger", "setup_logging"):  # the other names in __all__ are modules
        value: Any = getattr(importlib.import_module(f"{__name__}.logging"), name)
    elif name in __all__:
        value = importlib.import_module(f"{__name__}.{name}")
    elif name == "__version__":  # dslc is always installed: its metadata has the version
        value = importlib.import_module("importlib.metadata").version("dslc")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | {"__version__"})
