"""The ``dslc`` command (its commands: :data:`_COMMANDS`). Imports only the standard library
and light dslc modules, so ``dslc info`` starts fast (no pandas). Every problem is one
``dslc: error: ...`` line: exit 1, a bad argument 2 (argparse's convention), Ctrl-C 130.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from . import __version__, config
from ._secrets import scrub, scrub_urls
from .errors import DslcError
from .logging import setup_logging

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``dslc: error: ...``) instead of usage + message."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"dslc: error: {scrub(message)} (see `{self.prog} --help`)\n")


def _whole(what: str, high: int = sys.maxsize) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text) if text.strip().isdecimal() else 0
        if not 1 <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {what}, not {text!r}")
        return value

    return parse


_port = _whole("a port number from 1 to 65535", 65535)


def _path_arg(text: str) -> str:
    if "\x00" in text:
        raise argparse.ArgumentTypeError(f"{text!r} contains a NUL character")
    return text


def _host(text: str) -> str:
    if not text.strip() or any(ord(ch) < 32 or ch in " /" for ch in text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a host name or address")
    return text


def _cmd_info(args: argparse.Namespace) -> int:
    from ._gitinfo import git_state

    root = config.project_root()
    rows: list[tuple[str, Any]] = [("project", config.project_name(root)), ("root", root)]
    rows += vars(config.paths(root)).items()
    rows += [("tracking", config.tracking_uri(root)), ("artifacts", config.artifact_root(root))]
    if (git := git_state(root)) is None:
        rows.append(("git", "none (not a repository, no commit yet, or git missing)"))
    else:
        rows += [
            ("commit", git.commit),
            ("branch", git.branch or "(detached)"),
            ("dirty", "yes" if git.dirty else "no"),
        ]
    rows.append(("dslc", __version__))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(scrub(f"{key:<{width}}  {value}"))
    return 0


class _Progress:
    """Per-dataset progress on stderr: a line each, or a byte bar (tqdm, on a terminal)."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.tqdm: Any = None
        if sys.stderr.isatty():
            with contextlib.suppress(ImportError):  # without tqdm, a line per dataset
                from tqdm import tqdm

                self.tqdm = tqdm

    def start(self, i: int, n: int, name: str, location: str) -> None:
        self.close()
        label = f"[{i}/{n}] {name}"
        if self.tqdm is None:
            print(scrub(f"{label}: {location}"), file=sys.stderr, flush=True)
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
    from ._lineage import add

    with contextlib.closing(_Progress()) as progress:
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
    print(f"recorded {entry.name}: {entry.location} {entry.fingerprint}")
    return 0


def _cmd_transfer(args: argparse.Namespace) -> int:
    from . import _dvc as dvc

    transfer = dvc.push if args.action == "push" else dvc.pull
    print(transfer(config.project_root()))
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from . import _reproduce as reproduce

    return reproduce.main(args.run_id, tolerance=args.tolerance, apply=args.apply_changes)


def _cmd_team(args: argparse.Namespace) -> int:
    from . import _team

    if args.remote is None and args.tracking_uri is None:
        raise DslcError("give --remote URL, --tracking-uri URI or both (see `dslc team --help`)")
    changed = _team.configure(config.project_root(), args.remote, args.tracking_uri)
    print(f"team settings written: commit {' and '.join(changed)}")
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    from . import _team

    return _team.doctor(config.project_root())


def _cmd_snapshot(args: argparse.Namespace) -> int:
    from . import data

    snap = data.snapshot(args.name)
    rows = f"{snap.rows:,} rows" if snap.rows is not None else "rows"
    print(f"snapshot {args.name}@{snap.id}: {snap.location} ({rows}, {_short(snap.fingerprint)})")
    return 0


def _short(fp: str | None) -> str:
    if not fp:
        return "-"
    algo, _, digest = fp.partition(":")
    return f"{algo}:{digest[:12]}"


# The stdout line of each dataset `dslc data verify` finds needing attention ("ok": none).
_VERIFY_LINES = {
    "changed": "changed: {name} (recorded {recorded}..., now {current}...)",
    "lost": "lost: {name} (gone from {location}; recorded {recorded}...)",
    "not_built": "not built yet: {name} ({location})",
    "unrecorded": "unrecorded: {name} (no fingerprint; record it: dslc data add --replace)",
    "live": "live: {name} (SQL source; `dslc data snapshot {name}` freezes it)",
    "error": "error: {name} ({detail})",
}


def _cmd_verify(args: argparse.Namespace) -> int:
    from ._lineage import FAILING, verify

    counts: dict[str, int] = {}
    with contextlib.closing(_Progress()) as progress:
        for c in verify(on_start=progress.start, on_bytes=progress.bytes, full=not args.fast):
            progress.close()
            counts[c.status] = counts.get(c.status, 0) + 1
            if line := _VERIFY_LINES.get(c.status):
                shown = {**vars(c), "recorded": _short(c.recorded), "current": _short(c.current)}
                print(scrub(line.format(**shown)), flush=True)
    label = {"not_built": "not built yet"}
    summary = ", ".join(f"{v} {label.get(k, k)}" for k, v in sorted(counts.items()))
    print(f"verified {sum(counts.values())} dataset(s): {summary or 'catalog is empty'}",
          file=sys.stderr)  # fmt: skip
    return 1 if any(counts.get(k) for k in FAILING) else 0


def _cmd_list(args: argparse.Namespace) -> int:
    from . import _catalog as catalog
    from . import _formats as formats

    rows = [("NAME", "FORMAT", "LOCATION", "FINGERPRINT", "DESCRIPTION")]
    for e in catalog.read(config.paths().catalog).values():
        try:
            fmt = "sql" if e.sql else e.format or formats.infer(e.location)
        except DslcError:
            fmt = "?"
        about = " ".join((e.description or "").split())  # one line per dataset
        rows.append((e.name, fmt, scrub_urls(e.location), _short(e.fingerprint), about))
        for snap in e.snapshots:
            rows.append((f"{e.name}@{snap.id}", "parquet", snap.location,
                         _short(snap.fingerprint), f"snapshot taken {snap.taken}"))  # fmt: skip
    widths = [max(map(len, column)) for column in zip(*rows, strict=True)]
    print("\n".join("  ".join(map(str.ljust, row, widths)).rstrip() for row in rows))
    return 0


def _check_port(host: str, port: int) -> None:
    """Fail in one line now if the UI could not listen on host:port (taken, not allowed)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise DslcError(f"cannot use host {host!r}: {exc}; give a host name or address") from None
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            raise DslcError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another port "
                "with --port (or stop what uses this one)"
            ) from None


def _cmd_ui(args: argparse.Namespace) -> int:
    from . import _mlflow_cli

    uri = config.tracking_uri()
    if uri.startswith(("http://", "https://")):
        print(f"MLflow tracking server: {scrub(uri)}")
        return 0
    _check_port(args.host, args.port)
    page = _runs_page(f"http://{args.host}:{args.port}", uri)
    print(f"MLflow UI on {page} (store {scrub(uri)}); Ctrl-C to stop",
          file=sys.stderr, flush=True)  # fmt: skip
    return _mlflow_cli.ui(uri, args.host, args.port)


def _runs_page(base: str, uri: str) -> str:
    """The project's runs in MLflow's UI. Without ``workflowType=machine_learning`` in the
    address, the UI opens every experiment on its GenAI overview ("No data available")."""
    from .tracking._store import client, find_experiment, sqlite_path

    path, where = sqlite_path(uri), ""
    if path and os.path.isfile(path):  # no store yet: opening one would make it
        root = config.project_root()
        experiment, _ = find_experiment(client(root), None, root)
        where = f"/{experiment.experiment_id}" if experiment is not None else ""
    return f"{base}/#/experiments{where}?workflowType=machine_learning"


def _cmd_mlflow(args: argparse.Namespace) -> int:
    from . import _mlflow_cli

    _mlflow_cli.export_project_store(args.args)
    return _mlflow_cli.run(args.args)


def _cmd_tracking_server(args: argparse.Namespace) -> int:
    from . import _mlflow_cli

    plan = _mlflow_cli.plan(host=args.host, port=args.port, workers=args.workers)
    _mlflow_cli.check_database(plan)
    _check_port(plan.host, plan.port)
    return _mlflow_cli.serve(plan)  # replaces this process; returns only in tests


def _champion(args: argparse.Namespace) -> tuple[dict[str, str], Any, str]:
    from . import tracking

    store = tracking.ensure_store()
    uri = tracking.model_uri(args.model, alias=args.alias)
    if (version := tracking.champion(args.model, alias=args.alias)) is None:
        raise DslcError(f"no {args.alias} model yet ({uri}): run `make train` first")
    env = {**os.environ, "MLFLOW_TRACKING_URI": store}
    env["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"  # a bar per file says nothing here
    return env, version, uri


def _cmd_package(args: argparse.Namespace) -> int:
    from . import _serve

    env, version, _ = _champion(args)
    output = Path(args.output or config.project_root() / "dist" / "model").absolute()
    # The version itself, not the alias: the folder holds what this line reports.
    _serve.package(f"models:/{version.name}/{version.version}", output, env)
    tag = version.name.replace("_", "-")
    print(f"Packaged {version.name} version {version.version} in {output}: "
          f"docker build -t {tag} {output}", file=sys.stderr)  # fmt: skip
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from . import _serve

    env, version, uri = _champion(args)
    _check_port(args.host, args.port)
    guard = _serve.Guard((args.host, args.port), ("127.0.0.1", 0), args.max_mb * 2**20)
    url = f"http://{args.host}:{args.port}/invocations"
    ready = f"Serving {uri} (version {version.version}) on {url}; Ctrl-C to stop"
    return _serve.serve(uri, guard, env, ready)


def _cmd_report(args: argparse.Namespace) -> int:
    from . import _report as report

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
    from .tracking._table import runs_table

    if args.check:
        from . import _team

        if missing := _team.known_run(config.project_root(), Path(args.check).absolute()):
            print(scrub(f"dslc: {missing}"), file=sys.stderr)
        return 1 if missing else 0
    width = shutil.get_terminal_size((80, 24)).columns
    options = {k: getattr(args, k) for k in ("sort", "reverse", "limit", "experiment")}
    print("\n".join(runs_table(width=width, **options)))
    return 0


def _cmd_promote(args: argparse.Namespace) -> int:
    from . import tracking

    previous = tracking.champion(args.model, alias=args.alias)
    version = tracking.promote(args.version, args.model, alias=args.alias)
    if previous is not None and str(previous.version) == str(version.version):
        print(f"{args.alias} of {version.name!r} is already version {version.version}")
    else:
        before = f"version {previous.version}" if previous is not None else "none"
        print(f"{args.alias} of {version.name!r}: {before} -> version {version.version}")
    return 0


# Every command: its handler (None for a group of actions) and its line in `--help`.
_COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int] | None, str]] = {
    "info": (_cmd_info, "project root, paths, tracking URI, git state"),
    "data": (None, "dataset catalog: add, verify, list, snapshot"),
    "data add": (_cmd_add, "record a dataset and its fingerprint in the catalog"),
    "data verify": (_cmd_verify, "re-hash every dataset; exit 1 if one changed, was lost or fails"),
    "data list": (_cmd_list, "table of catalog entries"),
    "data push": (_cmd_transfer, "send DVC-tracked data and outputs to the DVC remote (make push)"),
    "data pull": (_cmd_transfer, "restore this commit's DVC-tracked data from the remote"),
    "data snapshot": (_cmd_snapshot, "freeze a SQL source's query result under data/raw"),
    "report": (_cmd_report, "execute the notebooks marked for publishing; render them to reports/"),
    "runs": (_cmd_runs, "table of the project's runs, best first"),
    "promote": (_cmd_promote, "point the model's alias (champion) at a version"),
    "reproduce": (_cmd_reproduce, "re-run a run from its commit and data; compare metrics"),
    "team": (_cmd_team, "commit the team's DVC remote and tracking server (no secrets)"),
    "doctor": (_cmd_doctor, "check remote, tracking store, champion and data; exit 1 on a fail"),
    # Listed for --help: main hands everything after `mlflow` to MLflow untouched.
    "mlflow": (_cmd_mlflow, "MLflow's own command line on the project's store"),
    "ui": (_cmd_ui, "open the MLflow UI on the project's store"),
    "package": (_cmd_package, "the champion as a folder to deploy: model, code, Dockerfile"),
    "serve": (_cmd_serve, "serve the champion over HTTP (MLflow's scoring server, guarded)"),
    "tracking-server": (_cmd_tracking_server, "run the team's MLflow server as .env sets it"),
}


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dslc", description="Data-science lifecycle helpers.")
    parser.add_argument("--version", action="version", version=f"dslc {__version__}")
    groups = {"": parser.add_subparsers(dest="command", required=True, metavar="COMMAND")}
    cmd: dict[str, _Parser] = {}  # add_subparsers makes each subcommand's parser a _Parser
    for name, (func, text) in _COMMANDS.items():
        group, _, leaf = name.rpartition(" ")
        cmd[name] = groups[group].add_parser(leaf, help=text)
        if func is None:
            groups[name] = cmd[name].add_subparsers(dest="action", required=True, metavar="ACTION")
        cmd[name].set_defaults(func=func)
    arg = cmd["data add"].add_argument
    arg("name", type=_path_arg, help="dataset name (letters, digits, '_', '-')")
    arg("path", type=_path_arg, help="file or folder (shell path, or relative to data/), or URL")
    arg("--parent", action="append", metavar="NAME", help="dataset it came from")
    arg("--description", type=_path_arg, help="one-line description")
    arg("--format", type=_path_arg, help="format, when the suffix does not tell")
    arg("--replace", action="store_true", help="update an existing entry")
    cmd["data verify"].add_argument(
        "--fast",
        action="store_true",
        help="trust the fingerprint cache for files whose size, times and inode are "
        "unchanged (a change hidden with `touch -r` goes unseen)",
    )
    cmd["data snapshot"].add_argument("name", type=_path_arg, help="catalog name of a SQL source")
    seconds = _whole("a whole number of seconds above 0")
    cmd["report"].add_argument("--timeout", type=seconds, default=600, metavar="SECONDS",
                               help="longest a single cell may run (default: 600)")  # fmt: skip
    count = _whole("a whole number above 0")
    arg = cmd["runs"].add_argument
    arg("--sort", metavar="METRIC", help="metric to sort by (default: metric under [tool.dslc])")
    arg("--reverse", action="store_true", help="worst (or oldest) first")
    arg("--limit", type=count, default=20, metavar="N", help="show at most N runs (default: 20)")
    arg("--experiment", metavar="NAME", help="default: the project's")
    arg("--check", type=_path_arg, metavar="FILE",
        help="exit 1 if the store lacks the run_id in FILE (JSON)")  # fmt: skip
    cmd["promote"].add_argument("version", help="registered model version number")
    arg = cmd["reproduce"].add_argument
    arg("run_id", type=_path_arg, help="MLflow run id (see `dslc runs`)")
    arg("--tolerance", type=float, default=1e-6, metavar="REL",
        help="largest relative metric difference (default: 1e-6)")  # fmt: skip
    arg("--apply-changes", action="store_true",
        help="apply the uncommitted changes the run recorded")  # fmt: skip
    arg = cmd["team"].add_argument
    arg("--remote", type=_path_arg, metavar="URL", help="DVC remote: folder or URL")
    arg("--tracking-uri", type=_path_arg, metavar="URI",
        help="the team's MLflow server, e.g. http://mlflow-host:5000")  # fmt: skip
    for name, port in (("ui", 5000), ("serve", 5001)):
        local = "address (default: 127.0.0.1, local only)"
        cmd[name].add_argument("--host", type=_host, default="127.0.0.1", help=local)
        cmd[name].add_argument("--port", type=_port, default=port, help=f"port (default: {port})")
    for name in ("promote", "serve", "package"):
        cmd[name].add_argument("--model", metavar="NAME", help="default: model under [tool.dslc]")
        cmd[name].add_argument("--alias", default="champion", help="default: champion")
    cmd["package"].add_argument("--output", type=_path_arg,
                                help="folder to write (default: dist/model)")  # fmt: skip
    cmd["serve"].add_argument("--max-mb", type=count, default=64, metavar="N",
                              help="largest request body in MiB (default: 64)")  # fmt: skip
    arg = cmd["tracking-server"].add_argument
    arg("--host", type=_host, help="address (default: MLFLOW_HOST, else 127.0.0.1)")
    arg("--port", type=_port, help="port (default: MLFLOW_PORT, else 5000)")
    arg("--workers", type=count, metavar="N", help="default: MLFLOW_WORKERS, else one per core")
    return parser


def _fail(message: str) -> int:
    print(f"dslc: error: {scrub(' '.join(message.split()))}", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dslc`` command; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["mlflow"]:  # argparse would take MLflow's leading options for dslc's
        args = argparse.Namespace(func=_cmd_mlflow, args=argv[1:])
    else:
        args = _build_parser().parse_args(argv)
    try:
        if threading.current_thread() is threading.main_thread():  # SIGTERM cleans up as Ctrl-C
            signal.signal(signal.SIGTERM, signal.default_int_handler)
        # dslc's own log records only, unless DSLC_LOG_LEVEL is set: libraries' would repeat
        # the one-line error. A bad DSLC_LOG_LEVEL or DSLC_LOG_FILE fails before the command.
        if os.environ.get("DSLC_LOG_LEVEL"):
            setup_logging()
        else:
            setup_logging(logging.CRITICAL + 1)
            logging.getLogger("dslc").setLevel(logging.INFO)
        return int(args.func(args))
    except DslcError as exc:
        return _fail(str(exc))
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(f"{where}{exc.strerror or exc}")
    except KeyboardInterrupt:
        print("dslc: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("DSLC_DEBUG"):
            raise
        return _fail(
            f"unexpected {type(exc).__name__}: {exc} (a bug in dslc: please report it; "
            "DSLC_DEBUG=1 shows the traceback)"
        )


if __name__ == "__main__":
    sys.exit(main())
