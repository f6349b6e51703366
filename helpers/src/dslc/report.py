"""Publish notebooks as self-contained HTML reports (``dslc report``).

A notebook is published when its metadata holds ``"dslc": {"publish": true, ...}``, with
optional ``title``, ``authors``, ``date``, ``tags`` and ``summary``. Each one is executed
top to bottom in a fresh kernel of the running interpreter (the project's environment),
from its own folder, then rendered with nbconvert into ``reports/<name>.html`` under a
header made from that metadata; ``reports/index.html`` links them all. Notebook files are
never modified, and every page is written atomically (no half-written HTML).

A page must render in full offline (opened from a mail, on a train), so it loads nothing:
images and styles are embedded, formulas become MathML, which browsers draw natively, and
nbconvert's CDN scripts (RequireJS, MathJax, Mermaid, the widget manager) are left out.

nbconvert, nbclient, ipykernel and latex2mathml (the ``report`` extra) are imported only
here, on use.
"""

from __future__ import annotations

import contextlib
import functools
import html
import importlib.util
import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import atomic, config
from .errors import ReportError

INDEX = "index.html"
DEFAULT_TIMEOUT = 600  # seconds per cell
# Figures must come back as inline PNG outputs: a backend inherited from the shell (say
# MPLBACKEND=Agg for headless runs) would draw them nowhere and the report would lose them.
_INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
_QUIET_WARNINGS = "ignore:IProgress not found"
_INSTALL_HINT = "install them with: pip install 'dslc[report]'"

log = logging.getLogger(__name__)

# Log lines and warnings go to stderr, which Jupyter paints as errors (pink); in a
# finished report they are information (an error stops the report), so shown neutral.
_CSS = """
.dslc-header { margin: 1rem 0; font-family: system-ui, sans-serif; border-bottom: 1px solid #ddd;
  padding: 0 1rem 1rem calc(var(--jp-cell-prompt-width, 64px) + 22px); }
.dslc-header h1 { margin: 0 0 .4rem; font-size: 2rem; }
.dslc-summary { font-size: 1.1rem; color: #333; margin: .2rem 0 .6rem; }
.dslc-meta, .dslc-source { color: #555; margin: .2rem 0; }
.dslc-source a { color: #24508f; text-decoration: underline; }
.dslc-tag { display: inline-block; background: #eef3fb; color: #24508f; border-radius: 4px;
  padding: 0 .4rem; margin-right: .3rem; font-size: .9em; }
.dslc-index { max-width: 900px; margin: 2rem auto; padding: 0 1rem; }
.dslc-index li { margin: 0 0 1.2rem; list-style: none; }
.dslc-index ul { padding: 0; }
.dslc-index a { font-size: 1.2rem; font-weight: 600; }
body .jp-RenderedText[data-mime-type='application/vnd.jupyter.stderr'] { background: #f5f5f5; }
math[display="block"] { margin: .6em 0; }
.dslc-tex { white-space: pre-wrap; }
"""
# Extends nbconvert's "lab" page: our header after <main>, our styles in <head>. The
# emptied blocks would load RequireJS, MathJax, Mermaid and the widget manager from CDNs;
# text/latex outputs become MathML like markdown formulas (see _exporter_class), and Mermaid
# diagrams stay readable as their source.
_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{% block extra_css %}<style>{{ resources.dslc_css }}</style>{% endblock extra_css %}
{%- block body_header -%}{{ super() }}{{ resources.dslc_header }}{%- endblock body_header -%}
{% block data_latex scoped -%}
<div class="jp-RenderedLatex jp-OutputArea-output {{ extra_class }}" data-mime-type="text/latex">
{{ output.data['text/latex'] | latex_to_html }}
</div>
{%- endblock data_latex %}
"""
# The delimiters of formulas in text/latex outputs (IPython's Math and Latex, sympy),
# display forms first: $$..$$, \[..\], \begin{env}..\end{env}, then $..$ and \(..\).
_LATEX_MATH = re.compile(
    r"\$\$(?P<dd>.+?)\$\$|\\\[(?P<db>.+?)\\\]"
    r"|(?P<env>\\begin\{(?P<name>[A-Za-z]+\*?)\}.*?\\end\{(?P=name)\})"
    r"|(?<![\\$])\$(?P<i>[^$]+?)\$|\\\((?P<ib>.+?)\\\)",
    re.DOTALL,
)


@dataclass(frozen=True)
class Report:
    """A notebook marked for publishing, its header metadata and where its page goes."""

    notebook: Path
    html: Path
    title: str
    authors: tuple[str, ...] = ()
    date: str = ""
    tags: tuple[str, ...] = ()
    summary: str = ""


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _first_heading(nb: dict[str, Any]) -> str:
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            source = cell.get("source", "")
            lines = ("".join(source) if isinstance(source, list) else str(source)).splitlines()
            for line in lines:
                if line.startswith("# "):
                    return line[2:].strip()
    return ""


def _describe(path: Path, nb: Any, p: config.Paths) -> Report | None:
    """The Report for a notebook marked for publishing, None for any other notebook."""
    where = _rel(path, p.root)
    meta = nb.get("metadata") if isinstance(nb, dict) else None
    dslc = meta.get("dslc") if isinstance(meta, dict) else None
    if dslc is None:
        return None
    if not isinstance(dslc, dict):
        raise ReportError(f"{where}: metadata.dslc must be an object")
    publish = dslc.get("publish", False)
    if not isinstance(publish, bool):
        raise ReportError(f"{where}: metadata.dslc.publish must be true or false, not {publish!r}")
    if not publish:
        return None

    def text(key: str) -> str:
        value = dslc.get(key, "")
        if not isinstance(value, str):
            raise ReportError(f"{where}: metadata.dslc.{key} must be a string, not {value!r}")
        return value.strip()

    def texts(key: str) -> tuple[str, ...]:
        value = dslc.get(key, [])
        value = [value] if isinstance(value, str) else value
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ReportError(f"{where}: metadata.dslc.{key} must be a list of strings")
        return tuple(v.strip() for v in value if v.strip())

    # Notebooks in subfolders get the folder in their page name, so names cannot collide.
    name = "-".join(path.relative_to(p.notebooks).with_suffix("").parts)
    return Report(
        notebook=path,
        html=p.reports / f"{name}.html",
        title=text("title") or _first_heading(nb) or path.stem,
        authors=texts("authors"),
        date=text("date"),
        tags=texts("tags"),
        summary=text("summary"),
    )


def find(root: Path | None = None) -> list[Report]:
    """Notebooks under ``notebooks/`` whose ``metadata.dslc.publish`` is true, by path.

    Raises:
        ReportError: a notebook is not valid JSON, its ``dslc`` metadata has a wrong type,
            or two notebooks would write the same page.
    """
    p = config.paths(root)
    reports: list[Report] = []
    for path in sorted(p.notebooks.rglob("*.ipynb")):
        if any(part.startswith(".") for part in path.relative_to(p.notebooks).parts):
            continue  # .ipynb_checkpoints and other hidden copies
        try:
            nb = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ReportError(f"cannot read {_rel(path, p.root)}: {exc}") from None
        report = _describe(path, nb, p)
        if report is not None:
            reports.append(report)
    pages: dict[Path, Report] = {}
    for r in reports:
        other = pages.get(r.html)
        if other is not None or r.html.name == INDEX:
            what = _rel(other.notebook, p.root) if other else "the index"
            raise ReportError(
                f"{_rel(r.notebook, p.root)} and {what} would both write "
                f"{_rel(r.html, p.root)}; rename the notebook"
            )
        pages[r.html] = r
    return reports


def _tools() -> dict[str, Any]:
    """The Jupyter pieces, imported on first use with a one-line hint when missing."""
    try:
        import nbformat
        from jinja2 import DictLoader
        from jupyter_client.kernelspec import KernelSpecManager
        from jupyter_client.manager import AsyncKernelManager
        from nbclient import NotebookClient
        from nbclient import exceptions as nbclient_errors
        from traitlets.config import Config

        exporter = _exporter_class()  # nbconvert's HTML exporter, formulas as MathML

        for name in ("ipykernel", "latex2mathml"):  # a subprocess; imported on first formula
            if importlib.util.find_spec(name) is None:
                raise ImportError(name=name)
    except ImportError as exc:
        raise ReportError(
            f"dslc report needs nbconvert, nbclient, ipykernel and latex2mathml ({exc.name} is "
            "missing); " + _INSTALL_HINT
        ) from None
    return {
        "nbformat": nbformat,
        "DictLoader": DictLoader,
        "KernelSpecManager": KernelSpecManager,
        "AsyncKernelManager": AsyncKernelManager,
        "NotebookClient": NotebookClient,
        "errors": nbclient_errors,
        "Exporter": exporter,
        "Config": Config,
    }


def mathml(tex: str, *, display: bool = False) -> str:
    """A TeX formula as MathML, which browsers draw themselves (nothing to download).

    TeX that latex2mathml cannot read is shown as its source, in ``<code>``, with a
    warning: the reader still sees the formula, and the report still gets written.
    """
    from latex2mathml.converter import convert

    try:
        return str(convert(tex.strip(), display="block" if display else "inline"))
    except Exception as exc:  # it raises many types, StopIteration included, on bad TeX
        log.warning("formula shown as TeX source (%s: %s): %s", type(exc).__name__, exc, tex)
        kind = "div" if display else "code"
        return f'<{kind} class="dslc-tex">{html.escape(tex)}</{kind}>'


def latex_to_html(text: str) -> str:
    """A text/latex output (text with formulas in TeX delimiters) as HTML with MathML."""
    parts, end = [], 0
    for m in _LATEX_MATH.finditer(text):
        parts.append(html.escape(text[end : m.start()]))
        block = next((g for g in (m["dd"], m["db"], m["env"]) if g is not None), None)
        if block is not None:
            parts.append(mathml(block, display=True))
        else:
            parts.append(mathml(m["i"] if m["i"] is not None else m["ib"]))
        end = m.end()
    parts.append(html.escape(text[end:]))
    return "".join(parts)


@functools.cache
def _exporter_class() -> type:
    """nbconvert's HTMLExporter with markdown formulas as MathML instead of MathJax input.

    Made on first use (nbconvert loads lazily). The markdown filter is nbconvert's own,
    with a renderer whose three math hooks emit MathML.
    """
    from jinja2 import pass_context
    from nbconvert import HTMLExporter
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    class MathMLRenderer(IPythonRenderer):
        def block_math(self, body: str) -> str:
            return mathml(body, display=True)

        def inline_math(self, body: str) -> str:
            return mathml(body)

        def latex_environment(self, name: str, body: str) -> str:
            return mathml(f"\\begin{{{name}}}{body}\\end{{{name}}}", display=True)

    class Exporter(HTMLExporter):
        @pass_context
        def markdown2html(self, context: Any, source: str) -> str:
            cell = context.get("cell", {})
            renderer = MathMLRenderer(
                escape=False,
                attachments=cell.get("attachments", {}),
                embed_images=self.embed_images,
                path=context.get("resources", {}).get("metadata", {}).get("path", ""),
                anchor_link_text=self.anchor_link_text,
                exclude_anchor_links=self.exclude_anchor_links,
            )
            return str(MarkdownWithMath(renderer=renderer).render(source))

        def default_filters(self) -> Any:
            # nbconvert leaves default_filters unannotated (mypy's untyped_calls_exclude
            # does not reach calls through super()).
            yield from super().default_filters()  # type: ignore[no-untyped-call]
            yield ("latex_to_html", latex_to_html)

    return Exporter


def _cell_label(nb: Any, index: int) -> str:
    """'cell 4 (`dataset.main()`)': its position and first code line, to find it again."""
    cells = nb.cells
    if not 0 <= index < len(cells):
        return "a cell"
    first = next((line.strip() for line in cells[index].source.splitlines() if line.strip()), "")
    first = first if len(first) <= 50 else first[:47] + "..."
    return f"cell {index + 1} (`{first}`)" if first else f"cell {index + 1}"


def execute(report: Report, *, timeout: int = DEFAULT_TIMEOUT, root: Path | None = None) -> Any:
    """Run the notebook top to bottom in a fresh kernel; return the executed NotebookNode.

    The kernel runs this interpreter (a user-wide "python3" kernelspec could point to
    another environment), from the notebook's folder, with matplotlib's inline backend.

    Raises:
        ReportError: a cell raised, ran longer than ``timeout`` seconds, or the kernel died.
    """
    t = _tools()
    where = _rel(report.notebook, config.paths(root).root)
    nb = t["nbformat"].read(report.notebook, as_version=4)
    language = nb.metadata.get("kernelspec", {}).get("language", "python")
    if language != "python":  # it will run in this Python, not the kernel it names
        raise ReportError(f"{where}: a {language} notebook; dslc report runs Python ones only")
    current = [-1]

    def on_cell_start(cell: Any, cell_index: int, **_: Any) -> None:
        current[0] = cell_index

    # No kernel folders: only ipykernel's built-in spec, which launches sys.executable.
    km = t["AsyncKernelManager"](
        kernel_name="python3", kernel_spec_manager=t["KernelSpecManager"](kernel_dirs=[])
    )
    # Encrypt the kernel's loopback sockets where jupyter_client and pyzmq support it
    # (CurveZMQ): current ipykernels warn on every start otherwise. Older ones lack it.
    with contextlib.suppress(Exception):
        km.transport_encryption = "auto"
    client = t["NotebookClient"](
        nb,
        km=km,
        timeout=timeout,
        resources={"metadata": {"path": str(report.notebook.parent)}},
        on_cell_start=on_cell_start,
    )
    # Keep tool chatter out of the page: ipykernel's debugger warning on Python 3.11+, and
    # tqdm's advice to install ipywidgets (progress bars print as text here anyway).
    warnings = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), _QUIET_WARNINGS]))
    env = {**os.environ, "MPLBACKEND": _INLINE_BACKEND, "PYTHONWARNINGS": warnings,
           "PYDEVD_DISABLE_FILE_VALIDATION": "1"}  # fmt: skip
    errors = t["errors"]
    try:
        client.execute(cleanup_kc=True, env=env)
    except errors.CellExecutionError as exc:
        cell = _cell_label(nb, current[0])
        # The error the cell shows; the kernel's reply can name another one (or None) when
        # the exception is chained or raised while displaying a result.
        shown = [o for o in nb.cells[current[0]].get("outputs", []) if o.output_type == "error"]
        ename, evalue = (shown[-1].ename, shown[-1].evalue) if shown else (exc.ename, exc.evalue)
        raise ReportError(f"{where}: {cell} failed: {ename}: {evalue}") from None
    except errors.CellTimeoutError:
        cell = _cell_label(nb, current[0])
        raise ReportError(
            f"{where}: {cell} did not finish within {timeout} s; make it faster or raise "
            "the limit (dslc report --timeout SECONDS)"
        ) from None
    except errors.DeadKernelError:
        cell = _cell_label(nb, current[0])
        raise ReportError(f"{where}: the kernel died while running {cell}") from None
    except RuntimeError as exc:  # the kernel did not start or answer
        raise ReportError(f"{where}: could not run a Python kernel: {exc}") from None
    return nb


def _header(report: Report, root: Path, provenance: str) -> str:
    e = html.escape
    parts = [f'<header class="dslc-header">\n<h1>{e(report.title)}</h1>']
    if report.summary:
        parts.append(f'<p class="dslc-summary">{e(report.summary)}</p>')
    meta = [f"By {e(', '.join(report.authors))}"] if report.authors else []
    meta += [f"<time>{e(report.date)}</time>"] if report.date else []
    meta += ["".join(f'<span class="dslc-tag">{e(tag)}</span>' for tag in report.tags)]
    parts.append(f'<p class="dslc-meta">{" · ".join(m for m in meta if m)}</p>')
    source = e(_rel(report.notebook, root))
    parts.append(
        f'<p class="dslc-source">From <code>{source}</code>, {e(provenance)} · '
        f'<a href="{INDEX}">all reports</a></p>\n</header>'
    )
    return "\n".join(parts)


def render(report: Report, nb: Any, *, root: Path | None = None, provenance: str = "") -> str:
    """The report page of an executed notebook: one HTML file, images embedded.

    Cells tagged ``remove-cell``, ``remove-input`` or ``remove-output`` (Jupyter Book's
    names) lose the cell, its code or its outputs in the page.
    """
    t = _tools()
    r = config.paths(root).root
    c = t["Config"]()
    c.TagRemovePreprocessor.enabled = True
    c.TagRemovePreprocessor.remove_cell_tags = {"remove-cell"}
    c.TagRemovePreprocessor.remove_input_tags = {"remove-input"}
    c.TagRemovePreprocessor.remove_all_outputs_tags = {"remove-output"}
    # nbconvert warns about images without alt text (every matplotlib figure): noise here.
    quiet = logging.getLogger("dslc.report.nbconvert")
    quiet.setLevel(logging.ERROR)
    exporter = t["Exporter"](
        config=c,
        log=quiet,
        template_name="lab",
        template_file="dslc-report.html.j2",
        extra_loaders=[t["DictLoader"]({"dslc-report.html.j2": _TEMPLATE})],
        embed_images=True,  # local markdown images too, so the page is one self-contained file
    )
    nb.metadata["title"] = report.title  # the page's <title>
    # Live widgets need their JavaScript manager from a CDN; without their saved state,
    # nbconvert shows each widget's text form instead.
    nb.metadata.pop("widgets", None)
    resources = {
        "metadata": {"name": report.notebook.stem, "path": str(report.notebook.parent)},
        "dslc_header": _header(report, r, provenance),
        "dslc_css": _CSS,
    }
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    return str(body)


def index_page(reports: list[Report], *, title: str, generated: str) -> str:
    """The index page: every report with its title (a link), date, authors, tags, summary."""
    e = html.escape
    items = []
    for r in reports:
        meta = " · ".join(x for x in (e(r.date), e(", ".join(r.authors))) if x)
        tags = "".join(f'<span class="dslc-tag">{e(tag)}</span>' for tag in r.tags)
        items.append(
            f'<li><a href="{e(r.html.name)}">{e(r.title)}</a>\n'
            f'<p class="dslc-meta">{meta} {tags}</p>\n'
            f'<p class="dslc-summary">{e(r.summary)}</p></li>'
        )
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1.0">\n'
        f"<title>{e(title)}</title>\n<style>{_CSS}</style>\n</head>\n"
        f'<body>\n<main class="dslc-index">\n<h1>{e(title)}</h1>\n'
        f'<p class="dslc-meta">{len(reports)} report(s), {e(generated)}</p>\n'
        f"<ul>\n{chr(10).join(items)}\n</ul>\n</main>\n</body>\n</html>\n"
    )


def _provenance(root: Path) -> str:
    from .gitinfo import git_state

    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    git = git_state(root)
    if git is None:
        return f"executed {now}"
    dirty = " with uncommitted changes" if git.dirty else ""
    return f"executed {now} at commit {git.commit[:10]}{dirty}"


def build(
    root: Path | None = None,
    *,
    timeout: int = DEFAULT_TIMEOUT,
    on_start: Callable[[int, int, Report], None] | None = None,
    on_done: Callable[[Report, float], None] | None = None,
) -> list[Report]:
    """Execute and render every notebook marked for publishing, then write the index.

    Stops at the first notebook that fails (its previous page, if any, stays whole) and
    writes the index only when all succeeded. Returns the reports, in path order.

    Raises:
        ReportError: no notebook is marked, the Jupyter tools are missing, or a notebook
            fails (see :func:`execute`).
    """
    p = config.paths(root)
    reports = find(p.root)
    if not reports:
        raise ReportError(
            f"no notebook under {_rel(p.notebooks, p.root)}/ is marked for publishing; add "
            '"dslc": {"publish": true, "title": "..."} to a notebook\'s metadata'
        )
    _tools()  # fail on a missing package before spending time on any notebook
    provenance = _provenance(p.root)
    p.reports.mkdir(parents=True, exist_ok=True)
    for i, report in enumerate(reports, 1):
        if on_start:
            on_start(i, len(reports), report)
        started = time.monotonic()
        nb = execute(report, timeout=timeout, root=p.root)
        atomic.write_text(report.html, render(report, nb, root=p.root, provenance=provenance))
        if on_done:
            on_done(report, time.monotonic() - started)
    title = f"{config.project_name(p.root)}: reports"
    atomic.write_text(p.reports / INDEX, index_page(reports, title=title, generated=provenance))
    return reports
