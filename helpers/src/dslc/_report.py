"""Publish notebooks as HTML reports (``dslc report``): nbclient executes, nbconvert renders.
Pages load nothing (read offline, mailed): formulas become MathML, which browsers draw."""

from __future__ import annotations

import contextlib
import html
import importlib.util
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import _atomic as atomic
from . import config
from .errors import ReportError

INDEX = "index.html"
# The page (nbconvert's "lab" page, dslc's header, no CDN scripts) and the index.
_TEMPLATES = Path(__file__).with_name("report_templates")
log = logging.getLogger(__name__)


def _math_pattern(markdown: bool) -> re.Pattern[str]:
    r"""Formulas as Jupyter finds them ($$, \[, \begin{env}, $, \(); in markdown, which eats a
    backslash before brackets (so ``\\[``), code and escapes are kept as they are."""
    b = r"\\\\" if markdown else r"\\"  # a backslash before brackets
    line = r"(?:[^\n]|\n(?![ \t]*\n))"  # any character, but no blank line
    code = rf"^ {{0,3}}(`{{3,}}|~{{3,}}).*?(?:^ {{0,3}}\1[ \t]*$|\Z)|(`+){line}+?(?<!`)\2(?!`)|"
    return re.compile(
        (code if markdown else "")
        + rf"\$\$(?P<dd>.+?)\$\$|{b}\[(?P<db>.+?){b}\]|{b}\((?P<ib>{line}+?){b}\)"
        + r"|(?P<env>\\begin\{(?P<n>[A-Za-z]+\*?)\}.*?\\end\{(?P=n)\})"
        + r"|\\.|\$(?P<i>(?:\\.|[^$\\\n]|\n(?![ \t]*\n))+?)\$",
        re.DOTALL | re.MULTILINE,
    )


_MATH = {"markdown": _math_pattern(markdown=True), "latex": _math_pattern(markdown=False)}


@dataclass(frozen=True)
class Report:
    """A notebook marked for publishing, its header metadata and where its page goes."""

    notebook: Path
    source: str  # the notebook's path from the project root, as pages and errors show it
    html: Path
    title: str
    authors: tuple[str, ...] = ()
    date: str = ""
    tags: tuple[str, ...] = ()
    summary: str = ""


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def _describe(path: Path, nb: Any, root: Path, p: config.Paths) -> Report | None:
    """The Report for a notebook marked for publishing, None for any other notebook."""
    where = f"{_rel(path, root)}: metadata.dslc"
    meta = nb.get("metadata") if isinstance(nb, dict) else None
    dslc = (meta.get("dslc") if isinstance(meta, dict) else None) or {}
    if not isinstance(dslc, dict):
        raise ReportError(f"{where} must be an object")
    if not isinstance(publish := dslc.get("publish", False), bool):
        raise ReportError(f"{where}.publish must be true or false, not {publish!r}")
    if not publish:
        return None
    fields: dict[str, Any] = {}
    for key in ("title", "authors", "date", "tags", "summary"):
        value, many = dslc.get(key, ""), key in ("authors", "tags")
        values = [value] if isinstance(value, str) else value if many else None
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            what = "a list of strings" if many else "a string"
            raise ReportError(f"{where}.{key} must be {what}, not {value!r}")
        fields[key] = tuple(v.strip() for v in values if v.strip()) if many else value.strip()
    sources = (c.get("source", "") for c in nb.get("cells", []) if c.get("cell_type") == "markdown")
    headings = (ln[2:] for md in sources for ln in "".join(md).splitlines() if ln[:2] == "# ")
    fields["title"] = fields["title"] or next(headings, "").strip() or path.stem
    # Notebooks in subfolders get the folder in their page name, so names cannot collide.
    name = "-".join(path.relative_to(p.notebooks).with_suffix("").parts)
    return Report(path, _rel(path, root), p.reports / f"{name}.html", **fields)


def find(root: Path | None = None) -> list[Report]:
    """Notebooks under ``notebooks/`` whose ``metadata.dslc.publish`` is true, by path."""
    root = config.project_root() if root is None else Path(root).resolve()
    p = config.paths(root)
    pages: dict[Path, Report] = {}
    for path in sorted(p.notebooks.rglob("*.ipynb")):
        if any(part.startswith(".") for part in path.relative_to(p.notebooks).parts):
            continue  # .ipynb_checkpoints and other hidden copies
        try:
            r = _describe(path, json.loads(path.read_text(encoding="utf-8")), root, p)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ReportError(f"cannot read {_rel(path, root)}: {exc}") from None
        if r and (r.html in pages or r.html.name == INDEX):
            what = pages[r.html].source if r.html in pages else "the index"
            raise ReportError(f"{r.source} and {what} would both write "
                              f"{_rel(r.html, root)}; rename the notebook")  # fmt: skip
        if r:
            pages[r.html] = r
    return list(pages.values())


def _mathml(tex: str, *, display: bool) -> str:
    """A TeX formula as MathML; TeX latex2mathml cannot read stays readable as its source."""
    from latex2mathml.converter import convert

    try:
        return str(convert(tex.strip(), display="block" if display else "inline"))
    except Exception as exc:  # it raises many types, StopIteration included, on bad TeX
        log.warning("formula shown as TeX source (%s: %s): %s", type(exc).__name__, exc, tex)
        kind = "div" if display else "code"
        return f'<{kind} class="dslc-tex">{html.escape(tex)}</{kind}>'


def execute(report: Report, *, timeout: int) -> Any:
    """The notebook executed in a fresh kernel of this Python, from the notebook's folder."""
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.read(report.notebook, as_version=4)
    language = nb.metadata.get("kernelspec", {}).get("language", "python")
    if language != "python":  # it would run in this Python, not in the kernel it names
        raise ReportError(f"{report.source}: a {language} notebook; dslc report runs Python only")
    # No kernel folders: only ipykernel's built-in spec, which launches sys.executable.
    km = AsyncKernelManager(kernel_spec_manager=KernelSpecManager(kernel_dirs=[]))
    with contextlib.suppress(Exception):  # CurveZMQ where supported: ipykernel warns without
        km.transport_encryption = "auto"
    running: list[Any] = ["a cell", None]  # 'cell 4 (`dataset.main()`)', to find it again

    def on_cell_start(cell: Any, cell_index: int, **_: Any) -> None:
        first = next((ln.strip() for ln in cell.source.splitlines() if ln.strip()), "")
        first = first if len(first) <= 50 else first[:47] + "..."
        running[:] = [f"cell {cell_index + 1} (`{first}`)", cell]

    client = NotebookClient(
        nb, km=km, timeout=timeout, on_cell_start=on_cell_start,
        resources={"metadata": {"path": str(report.notebook.parent)}},
    )  # fmt: skip
    # Figures must come back as inline PNGs whatever MPLBACKEND the shell sets (Agg would
    # draw them nowhere). Kept out of the page: ipykernel's debugger warning on Python
    # 3.11+ and tqdm's advice to install ipywidgets.
    warnings = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), "ignore:IProgress"]))
    env = {**os.environ, "MPLBACKEND": "module://matplotlib_inline.backend_inline",
           "PYTHONWARNINGS": warnings, "PYDEVD_DISABLE_FILE_VALIDATION": "1"}  # fmt: skip
    try:
        client.execute(cleanup_kc=True, env=env)
        return nb
    except CellExecutionError as exc:
        # The error the cell shows; the kernel's reply can name another one (or None) when
        # the exception is chained or raised while displaying a result.
        shown = next((o for o in running[1].outputs[::-1] if o.output_type == "error"), exc)
        problem = f"{running[0]} failed: {shown.ename}: {shown.evalue}"
    except CellTimeoutError:
        problem = (
            f"{running[0]} did not finish within {timeout} s; make it faster "
            "or raise the limit (dslc report --timeout SECONDS)"
        )
    except DeadKernelError:
        problem = f"the kernel died while running {running[0]}"
    except RuntimeError as exc:  # the kernel did not start or answer
        problem = f"could not run a Python kernel: {exc}"
    raise ReportError(f"{report.source}: {problem}")


def render(report: Report, nb: Any, *, provenance: str = "") -> str:
    """The report page of an executed notebook: one HTML file, images embedded."""
    from jinja2 import FileSystemLoader
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    # Placeholders of letters and digits, which markdown and escaping keep and no page holds.
    token = f"dslc{secrets.token_hex(6)}m"
    maths: list[str] = []

    def placeholder(m: re.Match[str]) -> str:
        tex = m["dd"] or m["db"] or m["env"]
        if not (tex or m["i"] or m["ib"]):
            return m[0]  # code, or an escaped character
        maths.append(_mathml(tex or m["i"] or m["ib"], display=bool(tex)))
        return f"{token}{len(maths) - 1}e"

    def formulas(nb: Any, resources: Any) -> tuple[Any, Any]:  # an nbconvert preprocessor
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.source = _MATH["markdown"].sub(placeholder, cell.source)
            for data in (output.get("data", {}) for output in cell.get("outputs", [])):
                if "text/latex" in data:
                    data["text/latex"] = _MATH["latex"].sub(placeholder, data["text/latex"])
        return nb, resources

    tags = {"remove_cell_tags": {"remove-cell"}, "remove_input_tags": {"remove-input"},
            "remove_all_outputs_tags": {"remove-output"}}  # fmt: skip
    quiet = logging.getLogger("dslc._report.nbconvert")  # it warns on every figure (no alt)
    quiet.setLevel(logging.ERROR)
    exporter = HTMLExporter(
        config=Config({"TagRemovePreprocessor": {"enabled": True, **tags}}),
        log=quiet,
        template_name="lab",
        template_file="dslc-page.html.j2",
        extra_loaders=[FileSystemLoader(_TEMPLATES)],
        embed_images=True,  # local markdown images too: the page is one self-contained file
    )
    exporter.register_preprocessor(formulas, enabled=True)
    nb.metadata["title"] = report.title  # the page's <title>
    nb.metadata.pop("widgets", None)  # without their saved state, widgets show their text
    resources = {
        "metadata": {"name": report.notebook.stem, "path": str(report.notebook.parent)},
        "dslc": {**vars(report), "provenance": provenance},
    }
    page, _ = exporter.from_notebook_node(nb, resources=resources)
    # Formulas' MathML in the text; in a tag (a heading's id, say), nothing.
    return re.sub(
        rf"<[^>]*>|{token}(\d+)e",
        lambda m: maths[int(m[1])] if m[1] else re.sub(rf"{token}\d+e", "", m[0]),
        str(page),
    )


def build(
    root: Path,
    *,
    timeout: int,
    on_start: Callable[[int, int, Report], None],
    on_done: Callable[[Report, float], None],
) -> list[Report]:
    """Execute and render every notebook marked for publishing, then write the index; at
    the first notebook that fails, its old page stays whole and no index is written."""
    from jinja2 import Environment, FileSystemLoader

    from ._gitinfo import git_state

    p = config.paths(root)
    if not (reports := find(root)):
        raise ReportError(
            f"no notebook under {_rel(p.notebooks, root)}/ is marked for publishing; add "
            '"dslc": {"publish": true, "title": "..."} to a notebook\'s metadata'
        )
    extra = ("nbconvert", "nbclient", "ipykernel", "latex2mathml")  # checked before any run
    if missing := [name for name in extra if importlib.util.find_spec(name) is None]:
        raise ReportError(
            f"dslc report needs nbconvert, nbclient, ipykernel and latex2mathml ({missing[0]} "
            "is missing); install them with: pip install 'dslc[report]'"
        )
    provenance = datetime.now(UTC).strftime("executed %Y-%m-%d %H:%M UTC")
    if git := git_state(root):
        provenance += f" at commit {git.commit[:10]}" + " with uncommitted changes" * git.dirty
    p.reports.mkdir(parents=True, exist_ok=True)
    for i, report in enumerate(reports, 1):
        on_start(i, len(reports), report)
        started = time.monotonic()
        nb = execute(report, timeout=timeout)
        atomic.write_text(report.html, render(report, nb, provenance=provenance))
        on_done(report, time.monotonic() - started)
    index = Environment(loader=FileSystemLoader(_TEMPLATES), autoescape=True)
    page = index.get_template("dslc-index.html.j2").render(
        reports=reports, title=f"{config.project_name(root)}: reports", generated=provenance
    )
    atomic.write_text(p.reports / INDEX, page)
    return reports
