"""A team on one project: ``dslc team`` commits its shared settings, ``dslc doctor`` checks
that this clone reaches them, ``dslc runs --check`` finds a run the store lacks
(helpers/README.md, A team)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from . import _dvc as dvc
from . import config
from ._atomic import read_regular, write_text
from ._secrets import scrub
from .errors import ConfigError


def configure(root: Path, remote: str | None, tracking_uri: str | None) -> list[str]:
    """Write the team's DVC remote and tracking URI; return the files to commit."""
    if tracking_uri is not None:  # checked before anything is written
        config.refuse_password(tracking_uri, "the tracking URI")
    if remote is not None:
        dvc.set_remote(root, remote)
    if tracking_uri is not None:
        _set_setting(root / "pyproject.toml", "tracking_uri", tracking_uri)
    written = {".dvc/config": remote, "pyproject.toml": tracking_uri}
    return [file for file, value in written.items() if value is not None]


def _set_setting(file: Path, key: str, value: str) -> None:
    """Set ``key = "value"`` in the ``[tool.dslc]`` table, keeping every other line."""
    lines = read_regular(file).decode("utf-8").splitlines(keepends=True)
    head = next((i for i, line in enumerate(lines) if line.strip() == "[tool.dslc]"), None)
    if head is None:
        raise ConfigError(f"{file} has no [tool.dslc] table line to add {key} to")
    end = next((i for i in range(head + 1, len(lines)) if lines[i].lstrip().startswith("[")),
               len(lines))  # fmt: skip
    at = [i for i in range(head + 1, end) if re.match(rf"\s*{key}\s*=", lines[i])]
    new = f"{key} = {json.dumps(value)}\n"  # a JSON string is a TOML basic string
    lines[at[0] if at else head + 1 : at[0] + 1 if at else head + 1] = [new]
    text = "".join(lines)
    if tomllib.loads(text)["tool"]["dslc"].get(key) != value:
        raise ConfigError(f"cannot set {key} in {file}: write it under [tool.dslc] by hand")
    write_text(file, text)


def known_run(root: Path, summary: Path) -> str | None:
    """Why the run that ``summary`` (a JSON file with a ``run_id``) names is missing from
    the tracking store, else None (no such file, or the store has it)."""
    from mlflow.exceptions import MlflowException

    from .tracking import client

    if not summary.exists():
        return None
    try:
        data = json.loads(read_regular(summary) or b"{}")
    except ValueError as exc:
        raise ConfigError(f"{summary} is not JSON: {exc}") from None
    run_id = str(data.get("run_id") if isinstance(data, dict) else "")
    if not re.fullmatch(r"[0-9a-f]{32}", run_id):
        return f"{summary} names no run id"
    try:
        client(root).get_run(run_id)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        return f"the tracking store {config.tracking_uri(root)} has no run {run_id} ({summary})"
    return None


def doctor(root: Path) -> int:
    """One line per check, ``ok`` or ``FAIL``; 1 if any failed."""
    from . import tracking

    def remote() -> str:
        where = dvc.remote(root)
        if missing := sorted(p for p, s in dvc.cloud(root, where).items() if s == "missing"):
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise ConfigError(f"{where.url} lacks {missing[0]}{more}: `make push` in the clone"
                              " that made it")  # fmt: skip
        return f"{where.name} ({where.url}) reachable, holds this commit's data"

    def champion() -> str:
        if (version := tracking.champion()) is None:
            raise ConfigError("no champion model yet: `make train`")
        return f"version {version.version} of {version.name!r}"

    def data() -> str:
        outs = dvc.tracked(root)
        if drifted := dvc.drift(root, outs):
            path, state = drifted[0]
            raise ConfigError(f"{path} is {state}, not what dvc.lock records: `make pull`"
                              " (or `make train` to record a new version)")  # fmt: skip
        return f"{len(outs)} output(s) as dvc.lock and the .dvc files record"

    # Each check by its label, in the order shown.
    checks = {"tracking": lambda: f"{tracking.ensure_store(root)} reachable", "champion": champion}
    if dvc.enabled(root):
        dvc.sweep(root)  # partial files of a killed pull
        checks = {"remote": remote, **checks, "data": data}
    failed = 0
    for label, check in checks.items():
        try:
            line = f"ok    {label}: {check()}"
        except Exception as exc:  # each check's failure is its line, whatever it was
            failed += 1
            line = f"FAIL  {label}: {' '.join(str(exc).split()) or type(exc).__name__}"
        print(scrub(line), flush=True)
    return 1 if failed else 0
