"""`dslc report`: which notebooks are published, how pages and the index look, failures.

The tests that execute notebooks start real ipykernel processes (a few seconds each).
"""

from __future__ import annotations

import base64
import json
import logging
import re
import struct
import subprocess
import sys
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from dslc import _report as report
from dslc import cli
from dslc.errors import ReportError

META = {
    "publish": True,
    "title": "Petal <b>sizes</b>",
    "authors": ["Ada Lovelace", "Alan Turing"],
    "date": "2025-03-14",
    "tags": ["explore", "iris"],
    "summary": "Petals separate the species.",
}


def tiny_png() -> str:
    """A 2x2 red PNG, base64, made with the standard library (no Pillow needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    return base64.b64encode(png).decode()


def notebook(path: Path, *codes: str, dslc: dict[str, Any] | None = None) -> Path:
    """Write a notebook (nbformat 4.5, like nbstripout leaves them) with code cells."""
    cells: list[dict[str, Any]] = [
        {"cell_type": "markdown", "id": "0", "metadata": {}, "source": ["# First heading\n"]}
    ]
    code_cell = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": []}
    cells += [{**code_cell, "id": str(i), "source": code} for i, code in enumerate(codes, 1)]
    metadata: dict[str, Any] = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
    }
    if dslc is not None:
        metadata["dslc"] = dslc
    nb = {"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["report", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_only_notebooks_marked_for_publishing_are_found(project: Path) -> None:
    nbs = project / "notebooks"
    notebook(nbs / "01-a.ipynb", dslc={"publish": True})
    notebook(nbs / "02-draft.ipynb", dslc={"publish": False, "title": "Draft"})
    notebook(nbs / "03-plain.ipynb")
    notebook(nbs / ".ipynb_checkpoints" / "01-a-checkpoint.ipynb", dslc={"publish": True})
    notebook(nbs / "deep" / "04-b.ipynb", dslc={**META, "authors": "One Author"})

    found = report.find()
    assert [r.notebook.relative_to(nbs).as_posix() for r in found] == [
        "01-a.ipynb",
        "deep/04-b.ipynb",
    ]
    assert [r.html.name for r in found] == ["01-a.html", "deep-04-b.html"]
    assert found[0].title == "First heading"  # no title: the first markdown heading
    assert found[1].authors == ("One Author",) and found[1].tags == ("explore", "iris")


@pytest.mark.parametrize(
    ("dslc", "message"),
    [
        ({"publish": "yes"}, "metadata.dslc.publish must be true or false, not 'yes'"),
        ({"publish": True, "tags": "a, b", "authors": [1]}, "metadata.dslc.authors must be a list"),
        ({"publish": True, "date": 20250101}, "metadata.dslc.date must be a string"),
    ],
)
def test_bad_metadata_is_one_line_naming_the_notebook(
    project: Path, capsys: pytest.CaptureFixture[str], dslc: dict[str, Any], message: str
) -> None:
    notebook(project / "notebooks" / "01-bad.ipynb", dslc=dslc)
    code, out, err = run(capsys)
    assert code == 1 and out == ""
    assert err.startswith("dslc: error: notebooks/01-bad.ipynb: ") and err.count("\n") == 1
    assert message in err


def test_no_notebook_marked_says_how_to_mark_one(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notebook(project / "notebooks" / "01-a.ipynb")
    code, out, err = run(capsys)
    assert code == 1 and out == ""
    assert err.startswith("dslc: error: no notebook under notebooks/ is marked for publishing")
    assert '"publish": true' in err and err.count("\n") == 1
    assert not (project / "reports" / report.INDEX).exists()


def test_a_notebook_named_index_is_refused(project: Path) -> None:
    notebook(project / "notebooks" / "index.ipynb", dslc={"publish": True})
    with pytest.raises(ReportError, match=r"notebooks/index.ipynb and the index would both write"):
        report.find()


def test_missing_jupyter_tools_give_the_install_hint(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    notebook(project / "notebooks" / "01-a.ipynb", dslc={"publish": True})
    monkeypatch.setitem(sys.modules, "nbconvert", None)  # makes `import nbconvert` fail
    code, _, err = run(capsys)
    assert code == 1
    assert "nbconvert is missing" in err and "pip install 'dslc[report]'" in err


def test_report_pages_and_index(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A headless backend in the shell must not reach the kernel: figures would vanish.
    monkeypatch.setenv("MPLBACKEND", "Agg")
    source = notebook(
        project / "notebooks" / "01-petals.ipynb",
        "import os\nprint('cwd', os.getcwd())\nprint('backend', os.environ['MPLBACKEND'])",
        f"from IPython.display import display\ndisplay({{'image/png': {tiny_png()!r}}}, raw=True)",
        dslc=META,
    )
    notebook(project / "notebooks" / "02-draft.ipynb", "raise SystemExit", dslc={"publish": False})
    before = source.read_bytes()

    code, out, err = run(capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("[1/1] notebooks/01-petals.ipynb -> reports/01-petals.html (")
    assert lines[1] == "reports/index.html: 1 report(s)" and len(lines) == 2

    page = (project / "reports" / "01-petals.html").read_text(encoding="utf-8")
    assert "<title>Petal &lt;b&gt;sizes&lt;/b&gt;</title>" in page  # escaped, not markup
    assert "<h1>Petal &lt;b&gt;sizes&lt;/b&gt;</h1>" in page
    for text in ("By Ada Lovelace, Alan Turing", "2025-03-14", "Petals separate the species.",
                 '<span class="dslc-tag">iris</span>', "notebooks/01-petals.ipynb"):  # fmt: skip
        assert text in page
    assert f"cwd {project / 'notebooks'}" in page  # ran from the notebook's folder
    assert "backend module://matplotlib_inline.backend_inline" in page
    assert f'src="data:image/png;base64,{tiny_png()}"' in page  # embedded: one file
    assert not (project / "reports" / "02-draft.html").exists()
    assert source.read_bytes() == before  # outputs never go back into the notebook

    index = (project / "reports" / "index.html").read_text(encoding="utf-8")
    assert '<a href="01-petals.html">Petal &lt;b&gt;sizes&lt;/b&gt;</a>' in index
    assert "2025-03-14 · Ada Lovelace, Alan Turing" in index
    assert "Petals separate the species." in index and "demo-project: reports" in index


def test_failing_cell_is_named_and_nothing_is_half_written(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notebook(project / "notebooks" / "01-bad.ipynb", "x = 1", "\nx / 0", dslc={"publish": True})
    old_page = project / "reports" / "01-bad.html"
    old_page.write_text("previous report", encoding="utf-8")

    code, out, err = run(capsys)
    assert code == 1
    assert out == "[1/1] notebooks/01-bad.ipynb\n"  # the progress line is ended
    assert err == (
        "dslc: error: notebooks/01-bad.ipynb: cell 3 (`x / 0`) failed: "
        "ZeroDivisionError: division by zero\n"
    )
    assert old_page.read_text(encoding="utf-8") == "previous report"
    assert sorted(p.name for p in (project / "reports").iterdir()) == ["01-bad.html", "figures"]


def test_slow_cell_hits_the_timeout(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    notebook(project / "notebooks" / "01-slow.ipynb", "import time\ntime.sleep(60)",
             dslc={"publish": True})  # fmt: skip
    code, _, err = run(capsys, "--timeout", "2")
    assert code == 1
    assert err == (
        "dslc: error: notebooks/01-slow.ipynb: cell 2 (`import time`) did not finish within "
        "2 s; make it faster or raise the limit (dslc report --timeout SECONDS)\n"
    )
    assert not (project / "reports" / "01-slow.html").exists()


def test_timeout_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["report", "--timeout", "0"])
    assert exit_.value.code == 2
    assert "must be a whole number of seconds above 0, not '0'" in capsys.readouterr().err


def test_report_module_loads_no_jupyter_until_used() -> None:
    probe = (
        "import sys, dslc.cli, dslc._report\n"
        "print([m for m in ('nbconvert', 'nbclient', 'jupyter_client', 'nbformat') "
        "if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# Elements that make a browser fetch something, and the attributes naming what.
_FETCHING = {
    "script": ("src",), "link": ("href",), "img": ("src", "srcset"), "iframe": ("src",),
    "source": ("src", "srcset"), "video": ("src", "poster"), "audio": ("src",),
    "embed": ("src",), "object": ("data",), "track": ("src",), "image": ("href", "xlink:href"),
}  # fmt: skip
_CSS_LOADS = re.compile(r"""@import\s+(?:url\()?\s*['"]?([^'")\s;]+)|url\(\s*['"]?([^'")\s]+)""")
_JS_LOADS = re.compile(r"""(?:https?:)?//[\w.-]+\.[a-z]{2,}[/\w.?=&%-]*""")


class _ExternalReferences(HTMLParser):
    """Everything a page would fetch when opened: any reference that is not inside it."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._inside: str | None = None

    @staticmethod
    def _outside(ref: str) -> bool:
        return not ref.startswith(("data:", "#", "about:blank"))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and name in _FETCHING.get(tag, ()) and self._outside(value.strip()):
                self.found.append(f"<{tag} {name}={value}>")
            if name == "style" and value:
                self.handle_data_as("style", value)
        self._inside = tag if tag in ("script", "style") else None

    def handle_endtag(self, tag: str) -> None:
        self._inside = None

    def handle_data(self, data: str) -> None:
        if self._inside:
            self.handle_data_as(self._inside, data)

    def handle_data_as(self, kind: str, text: str) -> None:
        if kind == "style":
            refs = [a or b for a, b in _CSS_LOADS.findall(text)]
            self.found += [f"css {ref}" for ref in refs if self._outside(ref)]
        else:  # a script names what it loads as a URL somewhere in its text
            self.found += [f"script {ref}" for ref in _JS_LOADS.findall(text)]


def external_references(page: str) -> list[str]:
    parser = _ExternalReferences()
    parser.feed(page)
    return parser.found


def test_the_scanner_finds_what_nbconvert_pages_used_to_load() -> None:
    """Guard the guard: the references nbconvert's stock lab page made, and others."""
    page = """<html><head>
    <script src="https://cdnjs.cloudflare.com/ajax/libs/require.js/2.1.10/require.min.js"></script>
    <script type="text/x-mathjax-config">init()</script>
    <script type="module">const m = (await import("https://cdn.example.org/mermaid.mjs"));</script>
    <link rel="stylesheet" href="//fonts.example.com/css?family=Lato">
    <style>@import url("https://example.com/theme.css"); .a { background: url(img/b.png) }
    /* see https://github.com/some/where */ .c { background: url(data:image/png;base64,AA) }</style>
    </head><body><img src="figures/plot.png"><img src="data:image/png;base64,AA">
    <a href="https://example.com/more">a link is not a load</a></body></html>"""
    found = external_references(page)
    assert found == [
        "<script src=https://cdnjs.cloudflare.com/ajax/libs/require.js/2.1.10/require.min.js>",
        "script https://cdn.example.org/mermaid.mjs",
        "<link href=//fonts.example.com/css?family=Lato>",
        "css https://example.com/theme.css",
        "css img/b.png",
        "<img src=figures/plot.png>",
    ], found


def _executed(*cells: dict[str, Any], widgets: bool = False) -> Any:
    """An executed notebook as dslc._report renders it, outputs included (no kernel)."""
    import nbformat

    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    meta: dict[str, Any] = {"kernelspec": kernel}
    if widgets:
        state = {"state": {"m1": {"model_name": "IntSliderModel", "state": {"value": 3}}}}
        meta["widgets"] = {"application/vnd.jupyter.widget-state+json": {**state}}
    nb = {"cells": list(cells), "metadata": meta, "nbformat": 4, "nbformat_minor": 5}
    return nbformat.from_dict(nb)


def _markdown(i: int, text: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "id": f"m{i}", "metadata": {}, "source": text}


def _output_cell(i: int, data: dict[str, Any]) -> dict[str, Any]:
    output = {"output_type": "display_data", "data": data, "metadata": {}}
    return {"cell_type": "code", "id": f"c{i}", "metadata": {}, "execution_count": i,
            "source": "show()", "outputs": [output]}  # fmt: skip


def test_pages_load_nothing_and_formulas_are_mathml(
    project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Opened offline or from a mail, a page shows everything: it has no outside reference."""
    nb = _executed(
        _markdown(1, "# Formulas\n\nThe score $F_1 = \\frac{2PR}{P + R}$, inline.\n\n"
                     "$$\\sum_{i=1}^{n} x_i^2$$\n\n"
                     "\\begin{equation}a = b^2\\end{equation}\n\n"
                     "Broken: $x^$. Code keeps dollars: `echo $HOME`."),
        _markdown(2, "```mermaid\ngraph LR; raw --> features\n```"),
        _output_cell(3, {"text/latex": "$\\displaystyle \\sqrt{x} < 1$", "text/plain": "Math"}),
        _output_cell(4, {"application/vnd.jupyter.widget-view+json": {"model_id": "m1"},
                         "text/plain": "IntSlider(value=3)"}),
        widgets=True,
    )  # fmt: skip
    path = project / "notebooks" / "01-f.ipynb"
    r = report.Report(notebook=path, source="notebooks/01-f.ipynb", html=Path("x"), title="F")
    with caplog.at_level(logging.WARNING, logger="dslc._report"):
        page = report.render(r, nb)

    assert external_references(page) == []
    for raw in ("$F_1", "\\frac", "$$", "\\sum", "\\begin{equation}", "\\sqrt"):
        assert raw not in page, f"TeX left for a script to typeset: {raw}"
    maths = re.findall(r"<math [^>]*display=\"(\w+)\"", page)
    assert maths == ["inline", "block", "block", "inline"], maths  # the latex output too
    assert "<mfrac>" in page and "<msqrt>" in page and "<msubsup>" in page
    # TeX it cannot read stays readable as its source, with a warning naming it.
    assert '<code class="dslc-tex">x^</code>' in page
    assert any("x^" in rec.getMessage() for rec in caplog.records)
    assert "<code>echo $HOME</code>" in page
    assert "graph LR; raw --&gt; features" in page  # Mermaid: its source, readable
    assert "IntSlider(value=3)" in page  # a widget: its text form, not an empty box
    assert "widget-state+json" not in page
    assert len(page) < 400_000  # nbconvert's JupyterLab styles are most of it


def _rendered(project: Path, cell: dict[str, Any], where: str) -> str:
    """The HTML of one cell's markdown or output (``where``: its data-mime-type) in a page."""
    path = project / "notebooks" / "01-f.ipynb"
    r = report.Report(notebook=path, source="notebooks/01-f.ipynb", html=Path("x"), title="F")
    page = report.render(r, _executed(cell))
    start = page.index(f'data-mime-type="{where}"')
    return page[page.index(">", start) + 1 : page.index("</div>", start)]


@pytest.mark.parametrize(
    ("latex", "shown"),
    [
        ("$x$", ['display="inline"']),
        ("Total: $$a+b$$ <done>", ["Total: ", 'display="block"', " &lt;done&gt;"]),
        ("\\[a\\] and \\(b\\)", ['display="block"', " and ", 'display="inline"']),
        ("\\begin{align}a &= b\\end{align}", ['display="block"', "<mtable"]),
        ("costs \\$5 and $6", ["costs \\$5 and $6"]),  # no formula: text, escaped
    ],
)
def test_latex_outputs_become_html_with_mathml(project: Path, latex: str, shown: list[str]) -> None:
    out = _rendered(project, _output_cell(1, {"text/latex": latex}), "text/latex")
    positions = [out.find(part) for part in shown]
    assert -1 not in positions and positions == sorted(positions), out
    assert out.count("<math ") == sum('display="' in part for part in shown), out


@pytest.mark.parametrize(
    ("markdown", "shown"),
    [
        # Code keeps its dollars; an escaped dollar is a dollar.
        ("`$x$` and $y$", ["<code>$x$</code> and ", "<mi>y</mi>"]),
        ("``a ` $x$`` $y$", ["<code>a ` $x$</code> ", "<mi>y</mi>"]),
        ("```\n$x$ and $$y$$\n```", ["<pre><code>$x$ and $$y$$\n</code></pre>"]),
        ("costs \\$5 and \\$6", ["costs $5 and $6"]),
        ("a $5\n\nand $6", ["a $5</p>", "and $6"]),  # a blank line ends an inline formula
        # Markdown does not read a formula: * and _ stay, no emphasis.
        ("$a * b * c$ and *d*", ["<mo>&#x0002A;</mo><mi>b</mi><mo>&#x0002A;</mo>", "<em>d</em>"]),
        ("$\\text{_x_}$", ["<mtext>_x_</mtext>"]),
        ("\\\\[a\\\\] and \\\\(b\\\\)", ['display="block"', " and ", 'display="inline"']),
        ("| $|x|$ | y |\n|---|---|\n| 1 | 2 |", ["<th><math", "<mo stretchy"]),
        # A formula in a heading: MathML in the heading, nothing of it in its anchor.
        ("# Loss $L$", ['<h1 id="Loss-">Loss <math', "<mi>L</mi></mrow></math><a"]),
    ],
)
def test_markdown_formulas_become_mathml_and_code_stays(
    project: Path, markdown: str, shown: list[str]
) -> None:
    out = _rendered(project, _markdown(1, markdown), "text/markdown")
    positions = [out.find(part) for part in shown]
    assert -1 not in positions and positions == sorted(positions), out
    assert "dslc" not in out, out  # no placeholder left
