"""Slow: `make report` in a baked project, and how its report looks in headless Chromium.

The example notebook is marked for publishing, so `make report` in a fresh project must
execute it and write its HTML page and an index into reports/, outside git; a screenshot
taken by headless Chromium must show the rendered notebook with its figure. Where no
Chromium is installed that one test is skipped (.ci/run installs it from Debian's packages).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.generated import sh

pytestmark = pytest.mark.slow

INSPECT = Path(__file__).with_name("inspect_screenshot.py")
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


@pytest.fixture(scope="module")
def reported(ready_project):
    """`make report` once in the shared project: its output, the example and its page."""
    result = sh("make report", ready_project)
    notebook = next((ready_project / "notebooks").glob("01-*-explore-example.ipynb"))
    return SimpleNamespace(
        project=ready_project,
        stdout=result.stdout,
        notebook=notebook,
        meta=json.loads(notebook.read_text())["metadata"]["dslc"],
        page=ready_project / "reports" / f"{notebook.stem}.html",
        index=ready_project / "reports" / "index.html",
    )


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


def screenshot(page: Path, folder: Path) -> Path:
    """A headless Chromium screenshot of `page`, tall enough for the example notebook."""
    shot = folder / f"{page.stem}.png"
    command = [
        _browser(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--no-first-run", "--hide-scrollbars", f"--user-data-dir={folder / 'profile'}",
        "--window-size=1280,2400", f"--screenshot={shot}", page.as_uri(),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0 and shot.is_file(), result.stderr[-3000:]
    return shot


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
