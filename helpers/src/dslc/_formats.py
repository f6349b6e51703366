"""Readers and writers by format: pandas (and joblib), imported on first use."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from .errors import FormatError


@dataclass(frozen=True)
class Format:
    """One format: ``<module>.<reader>(src)``; a ``frame`` format writes :meth:`savable`'s
    DataFrame with its method ``writer``, another with ``<module>.<writer>(obj, dest)``."""

    name: str
    reader: str
    writer: str
    frame: bool = True
    module: str = "pandas"
    needs: str | None = None  # an optional package the format cannot work without
    save_defaults: dict[str, Any] = field(default_factory=dict)

    def load(self, src: Any, **opts: Any) -> Any:
        self.check()
        return getattr(importlib.import_module(self.module), self.reader)(src, **opts)

    def save(self, obj: Any, dest: Any, **opts: Any) -> None:
        if self.frame:
            getattr(obj, self.writer)(dest, **opts)
        else:
            getattr(importlib.import_module(self.module), self.writer)(obj, dest, **opts)

    def check(self) -> None:
        if self.needs and importlib.util.find_spec(self.needs) is None:
            raise FormatError(
                f"format {self.name!r} needs the {self.needs} package; pip install {self.needs}"
            )

    def savable(self, obj: Any) -> Any:
        """``obj`` as this format writes it (a Series as a DataFrame); FormatError, before
        anything is written, if the format cannot store it."""
        self.check()
        if not self.frame:
            return obj
        import pandas as pd

        if isinstance(obj, pd.Series):
            return obj.to_frame()
        if not isinstance(obj, pd.DataFrame):
            raise FormatError(
                f"format {self.name!r} stores pandas DataFrames, got {type(obj).__name__}; "
                "save other objects as .pkl or .joblib"
            )
        return obj


# index=False for csv and excel: a catalog table's index is rarely data, and writing it
# makes the round trip grow an "Unnamed: 0" column. Excel names its engine: temporary
# files and streams have no suffix to choose one by.
FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("csv", "read_csv", "to_csv", save_defaults={"index": False}),
        Format("parquet", "read_parquet", "to_parquet"),
        Format("json", "read_json", "to_json"),
        Format("feather", "read_feather", "to_feather"),
        Format(
            "excel",
            "read_excel",
            "to_excel",
            needs="openpyxl",
            save_defaults={"index": False, "engine": "openpyxl"},
        ),
        Format("pickle", "read_pickle", "to_pickle", frame=False),  # any object
        Format("joblib", "load", "dump", frame=False, module="joblib", needs="joblib"),
    )
}
ALIASES = {"pkl": "pickle", "xlsx": "excel", "pq": "parquet"}
SUFFIXES = {f".{s}": ALIASES.get(s, s) for s in (*FORMATS, *ALIASES) if s != "excel"}
# Compression suffixes pandas understands; the format is the suffix before them.
COMPRESSION = {".gz", ".bz2", ".zip", ".xz", ".zst", ".tar"}


def normalize(name: str) -> str:
    """Canonical format name for ``name`` (case and aliases); FormatError if unknown."""
    key = name.strip().lower().lstrip(".")
    key = ALIASES.get(key, key)
    if key not in FORMATS:
        raise FormatError(f"unknown format {name!r}; supported formats: {', '.join(FORMATS)}")
    return key


def infer(location: str) -> str:
    """Format from a path or URL suffix (``x.csv``, ``x.csv.gz``); FormatError if unknown."""
    suffixes = [s.lower() for s in PurePosixPath(location.split("?", 1)[0]).suffixes]
    if suffixes and suffixes[-1] in COMPRESSION:
        suffixes.pop()
    if suffixes and suffixes[-1] in SUFFIXES:
        return SUFFIXES[suffixes[-1]]
    shown = suffixes[-1] if suffixes else "no suffix"
    raise FormatError(
        f"cannot tell the format of {location!r} ({shown}); use a known suffix or set "
        f"format (catalog entry or format=...); supported formats: {', '.join(FORMATS)}"
    )
