"""``dslc runs``: the project's runs as a table that fits the terminal.

One line per run: name, start, status, registered version and alias, then the sort
metric, the other metrics and the params that differ between the listed runs (a param
with one value everywhere says nothing), as many as the width allows; the columns left
out are named below the table.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .. import config
from ._errors import TrackingError, first_line
from ._registry import declared_metric
from ._store import client, default_experiment_name

if TYPE_CHECKING:
    from mlflow.entities import Run as MlflowRun
    from mlflow.tracking import MlflowClient

GAP = "  "
MAX_NAME = 24
MAX_VALUE = 12
CUT = "~"


@dataclass(frozen=True)
class Column:
    header: str
    cells: list[str]
    right: bool = False  # numbers align right

    @property
    def width(self) -> int:
        return max(len(self.header), *(len(c) for c in self.cells))

    def cell(self, i: int) -> str:
        text = self.header if i < 0 else self.cells[i]
        return text.rjust(self.width) if self.right else text.ljust(self.width)


def runs_table(
    *,
    sort: str | None = None,
    reverse: bool = False,
    limit: int = 20,
    width: int = 80,
    experiment: str | None = None,
) -> list[str]:
    """Lines of the table of the project's runs, best first by ``sort``."""
    root = config.project_root()
    store = client(root)
    exp = _experiment(store, experiment, root)
    if exp is None:
        return [f"no runs yet: experiment {experiment or default_experiment_name(root)!r} is empty"]
    metric, higher = _sort_metric(sort)
    if metric is None:
        order = [f"attributes.start_time {'ASC' if reverse else 'DESC'}"]
    else:  # runs without the metric come last either way (MLflow sorts NULLs last)
        descending = higher != reverse
        order = [f"metrics.`{metric}` {'DESC' if descending else 'ASC'}"]
        order.append("attributes.start_time DESC")
    try:
        runs = store.search_runs([exp.experiment_id], order_by=order, max_results=limit)
    except Exception as exc:
        raise TrackingError(f"cannot list the runs of {exp.name!r}: {first_line(exc)}") from exc
    if not runs:
        return [f"no runs yet in experiment {exp.name!r}"]
    columns = _fixed_columns(store, runs) + _value_columns(runs, metric)
    return _fit(columns, width, fixed=_n_fixed(columns))


def _experiment(store: MlflowClient, name: str | None, root: Any) -> Any:
    if name is None:
        env_id = os.environ.get("MLFLOW_EXPERIMENT_ID", "").strip()
        if env_id:
            return store.get_experiment(env_id)
        name = default_experiment_name(root)
    return store.get_experiment_by_name(name)


def _sort_metric(sort: str | None) -> tuple[str | None, bool]:
    """The metric to sort by (None: newest first) and whether higher is better."""
    if "metric" in config.settings():
        declared, higher = declared_metric()
        if sort is None or sort == declared:
            return declared, higher
    return sort, True


def _when(ms: int | None, now: datetime) -> str:
    if not ms:
        return "-"
    started = datetime.fromtimestamp(ms / 1000)
    return f"{started:%m-%d %H:%M}" if started.year == now.year else f"{started:%Y-%m-%d}"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + CUT


def _registered(store: MlflowClient) -> dict[str, tuple[list[str], list[str]]]:
    """run id -> (versions, aliases) of the project's registered model (all models if unset)."""
    model = config.settings().get("model")
    filter_string = f"name = '{model}'" if isinstance(model, str) and "'" not in model else ""
    versions = store.search_model_versions(filter_string)
    # Search results do not carry aliases; the registered models do (alias -> version).
    aliases: dict[tuple[str, str], list[str]] = {}
    for name in {mv.name for mv in versions}:
        for alias, number in (store.get_registered_model(name).aliases or {}).items():
            aliases.setdefault((name, str(number)), []).append(alias)
    by_run: dict[str, tuple[list[str], list[str]]] = {}
    for mv in sorted(versions, key=lambda mv: (mv.name, int(mv.version))):
        label = str(mv.version) if filter_string else f"{mv.name}/{mv.version}"
        run_versions, run_aliases = by_run.setdefault(str(mv.run_id), ([], []))
        run_versions.append(label)
        run_aliases.extend(sorted(aliases.get((mv.name, str(mv.version)), [])))
    return by_run


def _fixed_columns(store: MlflowClient, runs: Sequence[MlflowRun]) -> list[Column]:
    now = datetime.now()
    registered = _registered(store)
    none: tuple[list[str], list[str]] = ([], [])
    versions = [registered.get(r.info.run_id, none) for r in runs]
    columns = [
        Column("RUN", [_short(r.info.run_name or r.info.run_id, MAX_NAME) for r in runs]),
        Column("START", [_when(r.info.start_time, now) for r in runs]),
        Column("STATUS", [r.info.status for r in runs]),
    ]
    if any(v for v, _ in versions):
        columns.append(Column("VER", [",".join(v) or "-" for v, _ in versions], right=True))
    if any(a for _, a in versions):
        columns.append(Column("ALIAS", [",".join(a) or "-" for _, a in versions]))
    return columns


def _n_fixed(columns: list[Column]) -> int:
    return sum(c.header in ("RUN", "START", "STATUS", "VER", "ALIAS") for c in columns)


def _value_columns(runs: Sequence[MlflowRun], metric: str | None) -> list[Column]:
    metric_names = sorted({k for r in runs for k in r.data.metrics})
    if metric is not None:  # the sort metric first, even when no listed run has it
        metric_names = [metric, *(m for m in metric_names if m != metric)]
    columns = [
        Column(
            name,
            [_number(r.data.metrics.get(name)) for r in runs],
            right=True,
        )
        for name in metric_names
    ]
    param_names = sorted({k for r in runs for k in r.data.params})
    for name in param_names:
        values = [r.data.params.get(name) for r in runs]
        if len(set(values)) > 1:  # the same everywhere: not worth a column
            cells = [_short(v, MAX_VALUE) if v is not None else "-" for v in values]
            columns.append(Column(name, cells))
    return columns


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _fit(columns: list[Column], width: int, fixed: int) -> list[str]:
    """Keep the fixed columns, then as many of the others as ``width`` allows."""
    shown = columns[:fixed]
    used = sum(c.width for c in shown) + len(GAP) * (len(shown) - 1)
    left_out: list[str] = []
    for column in columns[fixed:]:
        if not left_out and used + len(GAP) + column.width <= width:
            shown.append(column)
            used += len(GAP) + column.width
        else:
            left_out.append(column.header)
    rows = range(-1, len(shown[0].cells))
    lines = [GAP.join(c.cell(i) for c in shown).rstrip() for i in rows]
    if left_out:
        lines.append(_left_out(left_out, width))
    return lines


def _left_out(names: list[str], width: int) -> str:
    """``not shown: a, b, +3 more``, whole names only, within ``width``."""
    text = "not shown:"
    for i, name in enumerate(names):
        more = len(names) - i - 1
        tail = f", +{more} more" if more else ""
        candidate = f"{text}{',' if i else ''} {name}"
        if len(candidate + tail) > width:
            return f"{text}{',' if i else ''} +{len(names) - i} more"
        text = candidate
    return text
