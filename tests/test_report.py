"""Slow: `make report` in a baked project, and how its reports look in headless Chromium.

The example notebook is marked for publishing, so `make report` in a fresh project must
execute it and write its HTML page and an index into reports/, outside git; a screenshot
taken by headless Chromium must show the rendered notebook with its figure. Reports are
read offline and mailed: with the network unreachable for the browser, a page with
formulas must load nothing and show them typeset. Where no Chromium is installed the
browser tests are skipped (.ci/run installs it from Debian's packages).
"""

from __future__ import annotations

import contextlib
import html
import json
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.generated import sh

pytestmark = pytest.mark.slow

INSPECT = Path(__file__).with_name("inspect_screenshot.py")
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


# A notebook with formulas, as an analyst writes them: markdown math and a displayed one.
FORMULAS = "98-tt-formulas"
FORMULAS_NOTEBOOK = {
    "cells": [
        {"cell_type": "markdown", "id": "m1", "metadata": {}, "source": [
            "# Formulas\n", "\n", "The F1 score is $F_1 = \\frac{2PR}{P + R}$ and the loss\n",
            "\n", "$$L = \\sum_{i=1}^{n} \\left(y_i - \\hat{y}_i\\right)^2$$\n"]},
        {"cell_type": "code", "id": "c1", "metadata": {}, "execution_count": None,
         "outputs": [], "source": [
             "from IPython.display import Math\n", "\n", "Math(r'\\sqrt{\\frac{a}{b}}')"]},
    ],
    "metadata": {
        "dslc": {"publish": True, "title": "Formulas"},
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}  # fmt: skip


@pytest.fixture(scope="module")
def reported(own_project):
    """`make report` once in the shared project: its output, the example and its page.

    A notebook with formulas is published alongside, and removed afterwards.
    """
    formulas = own_project / "notebooks" / f"{FORMULAS}.ipynb"
    formulas.write_text(json.dumps(FORMULAS_NOTEBOOK, indent=1) + "\n")
    try:
        result = sh("make report", own_project)
        notebook = next((own_project / "notebooks").glob("01-*-explore-example.ipynb"))
        yield SimpleNamespace(
            project=own_project,
            stdout=result.stdout,
            notebook=notebook,
            meta=json.loads(notebook.read_text())["metadata"]["dslc"],
            page=own_project / "reports" / f"{notebook.stem}.html",
            formulas=own_project / "reports" / f"{FORMULAS}.html",
            index=own_project / "reports" / "index.html",
        )
    finally:
        formulas.unlink()
        (own_project / "reports" / f"{FORMULAS}.html").unlink(missing_ok=True)


def test_make_report_writes_the_page_and_an_index(reported):
    meta, page = reported.meta, reported.page.read_text()
    assert f"notebooks/{reported.notebook.name} -> reports/{reported.page.name}" in reported.stdout
    assert f"<h1>{html.escape(meta['title'])}</h1>" in page
    for text in (*meta["authors"], meta["date"], meta["summary"], *meta["tags"]):
        assert html.escape(text) in page, text
    # The figure is an output of the executed notebook, embedded: the page is one file.
    assert re.search(r'<img[^>]*src="data:image/png;base64,', page)
    assert "Traceback" not in page

    index = reported.index.read_text()
    assert f'<a href="{reported.page.name}">{html.escape(meta["title"])}</a>' in index
    assert html.escape(meta["summary"]) in index and meta["date"] in index
    assert re.search(r"^\s+report\s+\S", sh("make", reported.project).stdout, re.MULTILINE)


def test_reports_stay_out_of_git_and_nothing_lands_beside_the_notebook(reported):
    notebook = reported.notebook.relative_to(reported.project).as_posix()
    status = sh(
        f"git status --porcelain --untracked-files=all -- reports {notebook}", reported.project
    )
    assert status.stdout == "", status.stdout
    for stray in ("mlflow.db", "mlruns", "mlartifacts"):
        assert not (reported.notebook.parent / stray).exists(), f"{stray} beside the notebook"


def _browser() -> str:
    for name in BROWSERS:
        if path := shutil.which(name):
            return path
    pytest.skip(f"no headless browser ({', '.join(BROWSERS)}) on PATH; .ci/run installs one")


@contextlib.contextmanager
def offline_chromium(folder: Path) -> Iterator[list[str]]:
    """Headless Chromium's command with the network unreachable, as on a train.

    Every request goes through a proxy on a loopback port that is bound but never
    listens, so each one is refused at once; none can reach a CDN (or wait for one).
    """
    with socket.socket() as refusing:
        refusing.bind(("127.0.0.1", 0))
        port = refusing.getsockname()[1]
        yield [
            _browser(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--hide-scrollbars", f"--user-data-dir={folder / 'profile'}",
            f"--proxy-server=http://127.0.0.1:{port}", "--proxy-bypass-list=<-loopback>",
        ]  # fmt: skip


def screenshot(page: Path, folder: Path) -> Path:
    """A headless Chromium screenshot of `page`, offline, tall enough for the example."""
    shot = folder / f"{page.stem}.png"
    with offline_chromium(folder) as chromium:
        command = [*chromium, "--window-size=1280,2400", f"--screenshot={shot}", page.as_uri()]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0 and shot.is_file(), result.stderr[-3000:]
    return shot


# Runs first in the page: notes every load that fails and, once the page has loaded,
# writes what it fetched, the visible text of its markdown and LaTeX outputs (code aside)
# and the size of each formula into the DOM.
PROBE = """<script>
(() => {
  const failed = [];
  addEventListener("error", (e) => failed.push(e.target && e.target !== window
    ? e.target.src || e.target.href || e.target.tagName : String(e.message)), true);
  addEventListener("unhandledrejection", (e) => failed.push(String(e.reason)));
  addEventListener("load", () => setTimeout(() => {
    const probe = document.createElement("pre");
    probe.id = "probe";
    probe.textContent = JSON.stringify({
      fetched: performance.getEntriesByType("resource").map((e) => e.name),
      failed,
      text: [...document.querySelectorAll(".jp-RenderedMarkdown, .jp-RenderedLatex")]
        .map((e) => e.innerText).join("\\n"),
      formulas: [...document.querySelectorAll("math")].map((m) => {
        const box = m.getBoundingClientRect();
        // The text around the formula, measured: its font size, the height of its line.
        const around = m.parentElement, x = around.appendChild(document.createElement("span"));
        x.textContent = "x";
        const line = x.getBoundingClientRect().height;
        x.remove();
        // Stacked parts stacked: a fraction's numerator above its denominator; a sum's
        // upper limit above the sign, the sign above the lower limit.
        const above = (a, b) => a.getBoundingClientRect().bottom <= b.getBoundingClientRect().top;
        const stacked = [...m.querySelectorAll("mfrac, munderover")].map((s) => {
          const [first, second, over] = s.children;  // mfrac: numerator, denominator
          return (!over || above(over, first)) && above(first, second);
        });
        return {display: m.getAttribute("display"), width: box.width, height: box.height,
                em: parseFloat(getComputedStyle(around).fontSize), line, stacked};
      }),
    });
    document.body.append(probe);
  }, 500));
})();
</script>"""


def probe(page: Path, folder: Path) -> dict:
    """What offline headless Chromium made of `page`: see PROBE."""
    probed = folder / f"probed-{page.name}"
    probed.write_text(page.read_text().replace("<head>", "<head>" + PROBE, 1))
    with offline_chromium(folder) as chromium:
        command = [*chromium, "--virtual-time-budget=10000", "--dump-dom", probed.as_uri()]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    found = re.search(r'<pre id="probe">(.*?)</pre>', result.stdout, re.DOTALL)
    assert result.returncode == 0 and found, result.stderr[-3000:]
    return json.loads(html.unescape(found[1]))


def test_report_shows_the_notebook_and_its_figure_in_headless_chromium(reported, tmp_path):
    shot = screenshot(reported.page, tmp_path)
    seen = json.loads(sh(f".venv/bin/python {INSPECT} {shot}", reported.project).stdout)

    assert seen["ink"] > 0.02, f"the page looks blank: {seen}"
    # The example's scatter plot, as the browser drew it: many points in each species'
    # colour, close together, and laid out as the data are (setosa's small petals bottom
    # left, versicolor in the middle, virginica's large ones top right).
    blue, orange, green = (seen["colours"][c] for c in ("blue", "orange", "green"))
    assert min(c["pixels"] for c in (blue, orange, green)) >= 100, f"no scatter plot: {seen}"
    xs, ys = zip(*(c["median"] for c in (blue, orange, green)), strict=True)
    assert max(xs) - min(xs) < 500 and max(ys) - min(ys) < 500, f"not one figure: {seen}"
    assert xs[0] < xs[1] < xs[2] and ys[0] > ys[1] > ys[2], f"not the petal plot: {seen}"


def assert_typeset(seen: dict) -> None:
    """The formulas of FORMULAS_NOTEBOOK are typeset (MathML the browser drew), not TeX.

    Sizes are compared with the text around each formula (its font size, the height of a
    line of it), never with pixel counts: fonts differ from machine to machine.
    """
    text, formulas = seen["text"], seen["formulas"]
    assert "Formulas" in text and "F1 score" in text, text
    for tex in ("\\frac", "\\sum", "\\sqrt", "$"):
        assert tex not in text, f"untypeset TeX {tex!r} in: {text}"
    assert [f["display"] for f in formulas] == ["inline", "block", "inline"], formulas
    # Laid out as mathematics: each fraction's numerator above its denominator, the sum's
    # limits above and below it (one fraction, one sum, one fraction under the root).
    assert [f["stacked"] for f in formulas] == [[True], [True], [True]], formulas
    # Drawn, not empty: each is wider than a character of its text (an em, at least)...
    assert all(f["width"] > f["em"] for f in formulas), formulas
    # ... and a sum with limits or a root over a fraction stands taller than a line of it.
    _, loss, root = formulas
    assert loss["height"] > 1.3 * loss["line"] and root["height"] > 1.3 * root["line"], formulas


def test_reports_load_nothing_and_show_formulas_offline(reported, tmp_path):
    for page in (reported.page, reported.formulas):
        seen = probe(page, tmp_path)
        assert seen["fetched"] == [] and seen["failed"] == [], f"{page.name}: {seen}"
    assert_typeset(seen)
