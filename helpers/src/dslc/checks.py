"""Data assumptions as tests over pandera: each returns the DataFrame when the assumption
holds, else raises ``AssumptionError`` (an ``AssertionError``); see helpers/README.md."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .errors import AssumptionError, DslcError

__all__ = ["assume", "expect", "has_columns", "in_range", "no_missing", "unique"]

_SHOWN_ROWS = 5
_MAX_VALUE_CHARS = 40


def _pa() -> Any:
    if importlib.util.find_spec("pandera") is None:
        raise DslcError("dslc.checks needs pandera; install it with: pip install 'dslc[checks]'")
    import pandera.pandas  # pandera's pandas API (pandera >= 0.24)

    return pandera.pandas


def _fmt_value(value: Any) -> str:
    text = repr(value.item() if hasattr(value, "item") else value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 3] + "..."


def _describe_failures(df: Any, cases: Any) -> str:
    """'k of n rows break it, e.g. row 3 (a=1), ...' plus any column-level problems."""
    parts: list[str] = []
    rows = cases[cases["index"].notna()]
    if len(rows):
        idx = list(dict.fromkeys(rows["index"].tolist()))  # unique, in order of failure
        shown = []
        for i in idx[:_SHOWN_ROWS]:
            cols = [c for c in rows.loc[rows["index"] == i, "column"].dropna().unique()]
            cols = [c for c in cols if c in df.columns] or list(df.columns)
            try:
                vals = ", ".join(f"{c}={_fmt_value(df.at[i, c])}" for c in cols)
            except (KeyError, ValueError):  # duplicate or unusual index labels
                vals = ""
            shown.append(f"row {i!r} ({vals})" if vals else f"row {i!r}")
        more = f" and {len(idx) - _SHOWN_ROWS} more" if len(idx) > _SHOWN_ROWS else ""
        parts.append(f"{len(idx)} of {len(df)} rows break it: {', '.join(shown)}{more}")
    for _, case in cases[cases["index"].isna()].iterrows():
        if case["check"] == "column_in_dataframe":
            parts.append(f"column {case['failure_case']!r} is missing")
        elif case["column"] is None and case["failure_case"] is False:
            parts.append("the check returned False")
        else:
            where = f"column {case['column']!r}: " * (case["column"] is not None)
            parts.append(f"{where}{case['check']} failed ({_fmt_value(case['failure_case'])})")
    return "; ".join(parts) or "validation failed"


def expect(df: Any, schema: Any, *, why: str, assumption: str | None = None) -> Any:
    """Validate ``df`` against a pandera schema, or a mapping of columns to
    ``pandera.Column``, ``pandera.Check`` or lists of checks (helpers/README.md)."""
    pa = _pa()
    if isinstance(schema, Mapping):
        schema = pa.DataFrameSchema(
            {
                col: spec if isinstance(spec, pa.Column) else pa.Column(checks=spec, nullable=True)
                for col, spec in schema.items()
            }
        )
    label = assumption or getattr(schema, "name", None) or "schema"
    try:
        schema.validate(df, lazy=True)
    except pa.errors.SchemaErrors as exc:
        detail = _describe_failures(df, exc.failure_cases)
        raise AssumptionError(
            f"assumption failed: {label}: {detail}; why it matters: {why}"
        ) from None
    return df


def assume(df: Any, description: str, predicate: Callable[[Any], Any], *, why: str) -> Any:
    """A custom assumption: ``predicate(df)`` returns a boolean Series (per row) or bool."""
    pa = _pa()
    schema = pa.DataFrameSchema(checks=[pa.Check(predicate, error=description)])
    return expect(df, schema, why=why, assumption=description)


def has_columns(df: Any, columns: Sequence[str], *, why: str) -> Any:
    """The columns exist (any type, missing values allowed)."""
    schema = dict.fromkeys(columns)  # columns without checks: expect makes them nullable
    return expect(df, schema, why=why, assumption=f"has columns {', '.join(columns)}")


def no_missing(df: Any, columns: Sequence[str] | None = None, *, why: str) -> Any:
    """No missing values (NaN/None/NaT) in ``columns`` (default: every column)."""
    pa = _pa()
    cols = list(df.columns) if columns is None else list(columns)
    assumption = f"no missing values in {', '.join(map(str, cols))}"
    return expect(df, {c: pa.Column(nullable=False) for c in cols}, why=why, assumption=assumption)


def unique(df: Any, columns: str | Sequence[str], *, why: str) -> Any:
    """No two rows share the same values in ``columns`` (taken together)."""
    pa = _pa()
    cols = [columns] if isinstance(columns, str) else list(columns)
    schema = pa.DataFrameSchema({c: pa.Column(nullable=True) for c in cols}, unique=cols)
    return expect(df, schema, why=why, assumption=f"rows unique on {', '.join(cols)}")


def in_range(df: Any, column: str, min: Any = None, max: Any = None, *, why: str) -> Any:
    """Values of ``column`` lie in ``[min, max]`` (either bound optional; missing values pass)."""
    pa = _pa()
    if min is None and max is None:
        raise DslcError("checks.in_range needs min, max or both")
    bounds = [(pa.Check.ge, min), (pa.Check.le, max)]
    checks = [check(bound) for check, bound in bounds if bound is not None]
    lo = "-inf" if min is None else repr(min)
    hi = "inf" if max is None else repr(max)
    return expect(df, {column: checks}, why=why, assumption=f"{column} within [{lo}, {hi}]")
