"""``dslc runs``: the project's runs in a table that fits the terminal, naming those left out."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from .. import config
from ._errors import failing
from ._registry import declared_metric
from ._store import client, find_experiment

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

GAP = "  "
Column = tuple[str, list[str], bool]  # header, cells, aligned right (numbers)


def runs_table(
    *, sort: str | None, reverse: bool, limit: int, width: int, experiment: str | None
) -> list[str]:
    """Lines of the table of the project's runs, best first by ``sort``."""
    root = config.project_root()
    store = client(root)
    exp, name = find_experiment(store, experiment, root)
    if exp is None:
        return [f"no runs yet: experiment {name!r} is empty"]
    metric, higher = sort, True
    if "metric" in config.settings():
        declared, declared_higher = declared_metric()
        if sort is None or sort == declared:
            metric, higher = declared, declared_higher
    order = [f"attributes.start_time {'ASC' if reverse else 'DESC'}"]
    if metric is not None:  # runs without the metric come last either way (NULLs last)
        direction = "DESC" if higher != reverse else "ASC"
        order = [f"metrics.`{metric}` {direction}", "attributes.start_time DESC"]
    with failing(f"cannot list the runs of {exp.name!r}"):
        runs = store.search_runs([exp.experiment_id], order_by=order, max_results=limit)
    if not runs:
        return [f"no runs yet in experiment {exp.name!r}"]
    return _fit(_fixed_columns(store, runs), _value_columns(runs, metric), width)


def _printable(text: str) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "~"


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
        run_versions, run_aliases = by_run.setdefault(str(mv.run_id), ([], []))
        run_versions.append(str(mv.version) if filter_string else f"{mv.name}/{mv.version}")
        run_aliases.extend(sorted(aliases.get((mv.name, str(mv.version)), [])))
    return by_run


def _fixed_columns(store: MlflowClient, runs: list[Any]) -> list[Column]:
    now, registered = datetime.now(), _registered(store)
    starts = [datetime.fromtimestamp((r.info.start_time or 0) / 1000) for r in runs]
    when = [f"{s:%m-%d %H:%M}" if s.year == now.year else f"{s:%Y-%m-%d}" for s in starts]
    versions = [registered.get(r.info.run_id, ([], [])) for r in runs]
    columns: list[Column] = [
        ("ID", [r.info.run_id[:8] for r in runs], False),  # `dslc reproduce` takes it, as git
        ("RUN", [_short(r.info.run_name or "-", 24) for r in runs], False),
        ("START", when, False),
        ("STATUS", [r.info.status for r in runs], False),
    ]
    if any(v for v, _ in versions):
        columns.append(("VER", [",".join(v) or "-" for v, _ in versions], True))
    if any(a for _, a in versions):
        columns.append(("ALIAS", [",".join(a) or "-" for _, a in versions], False))
    return columns


def _value_columns(runs: list[Any], metric: str | None) -> list[Column]:
    names = sorted({k for r in runs for k in r.data.metrics})
    if metric is not None:  # the sort metric first, even when no listed run has it
        names = [metric, *(m for m in names if m != metric)]
    columns: list[Column] = []
    for name in names:
        values = [r.data.metrics.get(name) for r in runs]
        columns.append((name, ["-" if v is None else f"{v:.4g}" for v in values], True))
    for name in sorted({k for r in runs for k in r.data.params}):
        values = [r.data.params.get(name) for r in runs]
        if len(set(values)) > 1:  # the same everywhere: not worth a column
            columns.append((name, ["-" if v is None else _short(v, 12) for v in values], False))
    return columns


def _fit(fixed: list[Column], others: list[Column], width: int) -> list[str]:
    """The fixed columns, then as many of the others as ``width`` allows."""
    shown: list[list[str]] = []  # the padded header and cells of each column shown
    left_out: list[str] = []
    for n, (header, raw, right) in enumerate(fixed + others):
        # Names come from the store, which the team writes: no escape or newline gets out.
        header, cells = _printable(header), [_printable(cell) for cell in raw]
        w = max(len(header), *map(len, cells))
        used = sum(len(column[0]) + len(GAP) for column in shown)
        if n < len(fixed) or (not left_out and used + w <= width):
            shown.append([t.rjust(w) if right else t.ljust(w) for t in (header, *cells)])
        else:
            left_out.append(header)
    lines = [GAP.join(row).rstrip() for row in zip(*shown, strict=True)]
    if left_out:  # whole names only, within the width: "not shown: a, b, +3 more"
        for n in range(len(left_out), -1, -1):
            more = len(left_out) - n
            note = "not shown: " + ", ".join(left_out[:n] + ([f"+{more} more"] if more else []))
            if len(note) <= width:
                break
        lines.append(note)
    return lines
