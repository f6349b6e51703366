"""Readers and writers by format. pandas, pyarrow and joblib are imported on first use.

Each format reads from and writes to a local path or a binary file object (fsspec), so
the same code serves local files (written atomically by the caller) and URLs.
"""

from __future__ import annotations

import importlib.util
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from .errors import FormatError

Source = Any  # str path or binary file object


@dataclass(frozen=True)
class Format:
    """How to read and write one format; ``frame`` formats hold pandas tables."""

    name: str
    load: Callable[..., Any]
    save: Callable[..., None]
    frame: bool
    save_defaults: dict[str, Any]


def _pd() -> Any:
    import pandas as pd

    return pd


def _as_frame(obj: Any, fmt: str) -> Any:
    pd = _pd()
    if isinstance(obj, pd.Series):
        return obj.to_frame()
    if not isinstance(obj, pd.DataFrame):
        raise FormatError(
            f"format {fmt!r} stores pandas DataFrames, got {type(obj).__name__}; "
            "save other objects as .pkl or .joblib"
        )
    return obj


def _save_pickle(obj: Any, dest: Source, **opts: Any) -> None:
    opts.setdefault("protocol", pickle.HIGHEST_PROTOCOL)
    if isinstance(dest, str):
        with open(dest, "wb") as fh:
            pickle.dump(obj, fh, **opts)
    else:
        pickle.dump(obj, dest, **opts)


def _load_pickle(src: Source, **opts: Any) -> Any:
    if isinstance(src, str):
        with open(src, "rb") as fh:
            return pickle.load(fh, **opts)
    return pickle.load(src, **opts)


def _joblib() -> Any:
    if importlib.util.find_spec("joblib") is None:
        raise FormatError("format 'joblib' needs the joblib package; pip install joblib")
    import joblib

    return joblib


def _frame_saver(method: str) -> Callable[..., None]:
    def save(obj: Any, dest: Source, **opts: Any) -> None:
        getattr(_as_frame(obj, method.removeprefix("to_")), method)(dest, **opts)

    return save


def _frame_loader(func: str) -> Callable[..., Any]:
    def load(src: Source, **opts: Any) -> Any:
        return getattr(_pd(), func)(src, **opts)

    return load


def _need_openpyxl() -> None:
    if importlib.util.find_spec("openpyxl") is None:
        raise FormatError("format 'excel' needs openpyxl; pip install 'dslc[excel]'")


def _load_excel(src: Source, **opts: Any) -> Any:
    _need_openpyxl()
    return _pd().read_excel(src, **opts)


def _save_excel(obj: Any, dest: Source, **opts: Any) -> None:
    _need_openpyxl()
    opts.setdefault("engine", "openpyxl")  # explicit: temp files and streams have no suffix
    _as_frame(obj, "excel").to_excel(dest, **opts)


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        # index=False: a catalog table's index is rarely data, and writing it makes the
        # round trip grow an "Unnamed: 0" column.
        Format("csv", _frame_loader("read_csv"), _frame_saver("to_csv"), True, {"index": False}),
        Format("parquet", _frame_loader("read_parquet"), _frame_saver("to_parquet"), True, {}),
        Format("json", _frame_loader("read_json"), _frame_saver("to_json"), True, {}),
        Format("feather", _frame_loader("read_feather"), _frame_saver("to_feather"), True, {}),
        Format("excel", _load_excel, _save_excel, True, {"index": False}),
        Format("pickle", _load_pickle, _save_pickle, False, {}),
        Format(
            "joblib",
            lambda src, **o: _joblib().load(src, **o),
            lambda obj, dest, **o: _joblib().dump(obj, dest, **o),
            False,
            {},
        ),
    )
}
ALIASES = {"pkl": "pickle", "xlsx": "excel", "pq": "parquet"}
SUFFIXES = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".feather": "feather",
    ".xlsx": "excel",
    ".pkl": "pickle",
    ".pickle": "pickle",
    ".joblib": "joblib",
}
# Compression suffixes pandas understands; the format is the suffix before them.
COMPRESSION = {".gz", ".bz2", ".zip", ".xz", ".zst", ".tar"}


def supported() -> str:
    """Comma-separated list of supported format names."""
    return ", ".join(FORMATS)


def normalize(name: str) -> str:
    """Canonical format name for ``name`` (case and aliases); FormatError if unknown."""
    key = name.strip().lower().lstrip(".")
    key = ALIASES.get(key, key)
    if key not in FORMATS:
        raise FormatError(f"unknown format {name!r}; supported formats: {supported()}")
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
        f"format (catalog entry or format=...); supported formats: {supported()}"
    )


def get(name: str) -> Format:
    """The :class:`Format` called ``name`` (aliases allowed)."""
    return FORMATS[normalize(name)]


def check_savable(fmt: Format, obj: Any) -> None:
    """Raise FormatError before anything is written if ``fmt`` cannot store ``obj``."""
    if fmt.frame:
        _as_frame(obj, fmt.name)
    if fmt.name == "joblib":
        _joblib()
    elif fmt.name == "excel":
        _need_openpyxl()


def open_url(url: str, mode: str, storage_options: dict[str, Any] | None = None) -> Any:
    """An fsspec ``OpenFile`` for ``url`` (compression from its suffix); use it in ``with``."""
    import fsspec

    return fsspec.open(url, mode, compression="infer", **(storage_options or {}))
