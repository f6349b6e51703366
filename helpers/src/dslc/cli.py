"""The ``dslc`` command: ``info``, ``data add|verify|list``, ``report``, ``runs``,
``promote``, ``ui``.

Imports only the standard library and light dslc modules, so ``dslc info`` starts fast
(no pandas). Every DslcError becomes one ``dslc: error: ...`` line and exit status 1.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from . import config
from .errors import DslcError


def _version() -> str:
    import dslc

    return str(dslc.__version__)


def _cmd_info(args: argparse.Namespace) -> int:
    from .gitinfo import git_state

    p = config.paths()
    rows: list[tuple[str, Any]] = [("project", config.project_name(p.root))]
    rows += [(f, getattr(p, f)) for f in p.__dataclass_fields__]
    rows += [("tracking", config.tracking_uri(p.root)), ("artifacts", config.artifact_root(p.root))]
    git = git_state(p.root)
    if git is None:
        rows.append(("git", "none (not a repository, no commit yet, or git missing)"))
    else:
        rows += [
            ("commit", git.commit),
            ("branch", git.branch or "(detached)"),
            ("dirty", "yes" if git.dirty else "no"),
        ]
    rows.append(("dslc", _version()))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0


class _Progress:
    """Per-dataset progress on stderr: a line each, plus a byte bar when tqdm is present."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.tqdm: Any = None
        if importlib.util.find_spec("tqdm") is not None and sys.stderr.isatty():
            from tqdm import tqdm

            self.tqdm = tqdm

    def start(self, i: int, n: int, name: str, location: str) -> None:
        self.close()
        label = f"[{i}/{n}] {name}"
        if self.tqdm is None:
            print(f"{label}: {location}", file=sys.stderr, flush=True)
        else:
            self.bar = self.tqdm(desc=label, unit="B", unit_scale=True, leave=False)

    def bytes(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _cmd_add(args: argparse.Namespace) -> int:
    from .lineage import add

    progress = _Progress()
    try:
        entry = add(
            args.name,
            args.path,
            parents=args.parent or (),
            description=args.description,
            format=args.format,
            replace_existing=args.replace,
            on_hash=lambda loc: progress.start(1, 1, args.name, loc),
            on_bytes=progress.bytes,
        )
    finally:
        progress.close()
    print(f"recorded {entry.name}: {entry.location} {entry.fingerprint}")
    return 0


def _short(fp: str | None, n: int = 12) -> str:
    if not fp:
        return "-"
    algo, _, digest = fp.partition(":")
    return f"{algo}:{digest[:n]}"


def _describe(c: Any) -> str | None:
    """One stdout line per problem; None for a dataset that matches."""
    if c.status == "changed":
        return f"changed: {c.name} (recorded {_short(c.recorded)}..., now {_short(c.current)}...)"
    if c.status == "missing":
        return f"missing: {c.name} ({c.location})"
    if c.status == "unrecorded":
        return f"unrecorded: {c.name} (no fingerprint; record it: dslc data add --replace)"
    if c.status == "error":
        return f"error: {c.name} ({c.detail})"
    return None


def _cmd_verify(args: argparse.Namespace) -> int:
    from .lineage import verify

    progress = _Progress()
    counts: dict[str, int] = {}
    try:
        for c in verify(
            on_start=lambda i, n, e: progress.start(i, n, e.name, e.location),
            on_bytes=progress.bytes,
        ):
            progress.close()
            counts[c.status] = counts.get(c.status, 0) + 1
            line = _describe(c)
            if line:
                print(line, flush=True)
    finally:
        progress.close()
    summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "catalog is empty"
    print(f"verified {sum(counts.values())} dataset(s): {summary}", file=sys.stderr)
    bad = sum(counts.get(k, 0) for k in ("changed", "missing", "error"))
    return 1 if bad else 0


def _cmd_list(args: argparse.Namespace) -> int:
    from . import catalog, formats

    entries = catalog.read(config.paths().catalog)
    rows = [("NAME", "FORMAT", "LOCATION", "FINGERPRINT", "DESCRIPTION")]
    for e in entries.values():
        try:
            fmt = e.format or formats.infer(e.location)
        except DslcError:
            fmt = "?"
        rows.append((e.name, fmt, e.location, _short(e.fingerprint), e.description or ""))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join([*(c.ljust(w) for c, w in zip(r, widths, strict=False)), r[4]]).rstrip())
    return 0


def _cmd_ui(args: argparse.Namespace) -> int:
    uri = config.tracking_uri()
    if uri.startswith(("http://", "https://")):
        print(f"MLflow tracking server: {uri}")
        return 0
    if importlib.util.find_spec("mlflow") is None:
        raise DslcError("mlflow is not installed; install it with: pip install 'dslc[tracking]'")
    cmd = [
        sys.executable, "-m", "mlflow", "ui",
        "--backend-store-uri", uri,
        "--default-artifact-root", config.artifact_root(),
        "--host", args.host,
        "--port", str(args.port),
    ]  # fmt: skip
    print(f"MLflow UI on http://{args.host}:{args.port} (store {uri}); Ctrl-C to stop",
          file=sys.stderr)  # fmt: skip
    return subprocess.call(cmd)


def _cmd_report(args: argparse.Namespace) -> int:
    from . import report

    root = config.project_root()
    line_open = False

    def start(i: int, n: int, r: report.Report) -> None:
        # One line per notebook: its name now, where its page went when it is done.
        nonlocal line_open
        print(f"[{i}/{n}] {r.notebook.relative_to(root).as_posix()}", end="", flush=True)
        line_open = True

    def done(r: report.Report, seconds: float) -> None:
        nonlocal line_open
        print(f" -> {r.html.relative_to(root).as_posix()} ({seconds:.1f} s)", flush=True)
        line_open = False

    try:
        reports = report.build(root, timeout=args.timeout, on_start=start, on_done=done)
    except DslcError:
        if line_open:  # end the progress line, so the error is a line of its own
            print(flush=True)
        raise
    index = (config.paths(root).reports / report.INDEX).relative_to(root).as_posix()
    print(f"{index}: {len(reports)} report(s)")
    return 0


def _cmd_runs(args: argparse.Namespace) -> int:
    import shutil

    from .tracking._table import runs_table

    width = shutil.get_terminal_size((80, 24)).columns
    lines = runs_table(
        sort=args.sort,
        reverse=args.reverse,
        limit=args.limit,
        width=width,
        experiment=args.experiment,
    )
    print("\n".join(lines))
    return 0


def _cmd_promote(args: argparse.Namespace) -> int:
    from . import tracking

    previous = tracking.champion(args.model, alias=args.alias)
    version = tracking.promote(args.version, args.model, alias=args.alias)
    if previous is not None and str(previous.version) == str(version.version):
        print(f"{args.alias} of {version.name!r} is already version {version.version}")
        return 0
    before = f"version {previous.version}" if previous is not None else "none"
    print(f"{args.alias} of {version.name!r}: {before} -> version {version.version}")
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a whole number of seconds above 0, not {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a whole number above 0, not {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(prog="dslc", description="Data-science lifecycle helpers.")
    parser.add_argument("--version", action="version", version=f"dslc {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("info", help="project root, paths, tracking URI, git state").set_defaults(
        func=_cmd_info
    )
    data = sub.add_parser("data", help="dataset catalog: add, verify, list")
    dsub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    add = dsub.add_parser("add", help="record a dataset and its fingerprint in the catalog")
    add.add_argument("name", help="dataset name (letters, digits, '_', '-')")
    add.add_argument("path", help="file or folder (shell path, or relative to data/), or URL")
    add.add_argument("--parent", action="append", metavar="NAME", help="dataset it came from")
    add.add_argument("--description", help="one-line description")
    add.add_argument("--format", help="format, when the suffix does not tell")
    add.add_argument("--replace", action="store_true", help="update an existing entry")
    add.set_defaults(func=_cmd_add)
    dsub.add_parser("verify", help="re-hash every dataset; exit 1 on drift").set_defaults(
        func=_cmd_verify
    )
    dsub.add_parser("list", help="table of catalog entries").set_defaults(func=_cmd_list)
    rep = sub.add_parser(
        "report", help="execute the notebooks marked for publishing; render them to reports/"
    )
    rep.add_argument("--timeout", type=_positive_int, default=600, metavar="SECONDS",
                     help="longest a single cell may run (default: 600)")  # fmt: skip
    rep.set_defaults(func=_cmd_report)
    runs = sub.add_parser("runs", help="table of the project's runs, best first")
    runs.add_argument("--sort", metavar="METRIC",
                      help="metric to sort by (default: metric under [tool.dslc])")  # fmt: skip
    runs.add_argument("--reverse", action="store_true", help="worst (or oldest) first")
    runs.add_argument("--limit", type=_count, default=20, metavar="N",
                      help="show at most N runs (default: 20)")  # fmt: skip
    runs.add_argument("--experiment", metavar="NAME", help="default: the project's")
    runs.set_defaults(func=_cmd_runs)
    promote = sub.add_parser("promote", help="point the model's alias (champion) at a version")
    promote.add_argument("version", help="registered model version number")
    promote.add_argument("--model", metavar="NAME", help="default: model under [tool.dslc]")
    promote.add_argument("--alias", default="champion", help="default: champion")
    promote.set_defaults(func=_cmd_promote)
    ui = sub.add_parser("ui", help="open the MLflow UI on the project's store")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=5000)
    ui.set_defaults(func=_cmd_ui)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dslc`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except DslcError as exc:
        print(f"dslc: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"dslc: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("dslc: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
