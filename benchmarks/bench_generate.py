"""Time generating a project, and going from `cookiecutter` to a green `make test`.

Run: uv run python benchmarks/bench_generate.py [--repeat N] [--baseline PATH] [--no-e2e]
Bars (ARCHITECTURE.md, "Bars"):
- generating a project takes no longer than generating cookiecutter-data-science;
- from `cookiecutter` to a green `make test` in a fresh project: under 2 minutes with a
  warm package cache.

cookiecutter-data-science's template lives only on GitHub (its PyPI package holds the
`ccds` command, not the template), so it may not be at hand. Pass a local checkout with
`--baseline`; without one, the baseline is this template rendered by plain cookiecutter
with our hooks and Jinja extension removed, which prices what answer checks, the dslc pin
and `git init` add. Reports only; always exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
E2E_BAR_SECONDS = 120.0
ENV = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_COMPILE_BYTECODE": "1"}
ENV.pop("VIRTUAL_ENV", None)


def bake_seconds(template: Path, workdir: Path) -> float:
    """Seconds for one `cookiecutter --no-input` run into a fresh folder."""
    output = Path(tempfile.mkdtemp(dir=workdir))
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(output), str(template)],
        check=True,
        capture_output=True,
        env=ENV,
    )
    return time.perf_counter() - start


def _template_filters() -> list[str]:
    """The names of the filters the template's Jinja extension adds (hooks/answers.py)."""
    sys.path.insert(0, str(ROOT))
    from hooks.answers import FILTERS

    return list(FILTERS)


def plain_copy(workdir: Path) -> Path:
    """This template without hooks, extension and the answer check: plain cookiecutter."""
    copy = workdir / "plain-template"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".git", ".venv", "helpers", "tests"))
    shutil.rmtree(copy / "hooks")
    context = json.loads((copy / "cookiecutter.json").read_text())
    context.pop("_extensions", None)
    (copy / "cookiecutter.json").write_text(json.dumps(context, indent=2))
    # Each filter the extension registers becomes Jinja's plain `string` filter.
    filters = _template_filters()
    for path in (copy / "{{cookiecutter.project_slug}}").rglob("*"):
        if path.is_file():
            text = path.read_text()
            for name in filters:
                text = text.replace(f"| {name}", "| string")
            path.write_text(text)
    for path in sorted(copy.rglob("*initials*"), reverse=True):
        path.rename(path.with_name(path.name.replace("| initials", "| lower")))
    return copy


def median_bakes(templates: list[Path], workdir: Path, repeat: int) -> list[float]:
    """Median bake time per template, taken in turns so that load on the machine hits all."""
    for template in templates:
        bake_seconds(template, workdir)  # warm-up: imports and OS file cache
    times: list[list[float]] = [[] for _ in templates]
    for _ in range(repeat):
        for template, taken in zip(templates, times, strict=True):
            taken.append(bake_seconds(template, workdir))
    return [statistics.median(taken) for taken in times]


def end_to_end_seconds(workdir: Path) -> float:
    """`cookiecutter`, then `make setup` and `make test` (warm uv cache after a first run)."""
    output = Path(tempfile.mkdtemp(dir=workdir))
    start = time.perf_counter()
    steps = [
        [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(output), str(ROOT)],
        ["make", "-C", str(output / "my-ds-project"), "setup", "test"],
    ]
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True, env=ENV, check=False)
        if result.returncode != 0:
            sys.exit(f"error: {' '.join(step[:3])} failed:\n{result.stdout[-2000:]}{result.stderr}")
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="bakes per template (median)")
    parser.add_argument("--baseline", type=Path, help="a local cookiecutter-data-science checkout")
    parser.add_argument("--no-e2e", action="store_true", help="skip the make setup/test timing")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        baseline = args.baseline or plain_copy(workdir)
        label = "cookiecutter-data-science" if args.baseline else "plain render, no hooks"
        ours, theirs = median_bakes([ROOT, baseline], workdir, args.repeat)
        print(f"generate ds-template:  {ours:6.2f} s (median of {args.repeat})")
        print(f"generate {label}: {theirs:6.2f} s (median of {args.repeat})")
        if args.baseline:
            verdict = "PASS" if ours <= theirs else "FAIL"
            print(f"ratio ds-template/ccds: {ours / theirs:.2f}x (bar: <= 1x) -> {verdict}")
        else:
            print(f"ratio ds-template/plain: {ours / theirs:.2f}x: what our hooks cost (no bar)")
        if not args.no_e2e:
            end_to_end_seconds(workdir)  # warm-up: fills uv's cache
            e2e = end_to_end_seconds(workdir)
            verdict = "PASS" if e2e < E2E_BAR_SECONDS else "FAIL"
            print(
                f"cookiecutter -> green make test, warm cache: {e2e:6.1f} s "
                f"= {e2e / E2E_BAR_SECONDS:.2f} of the {E2E_BAR_SECONDS:.0f} s bar -> {verdict}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
