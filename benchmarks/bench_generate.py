"""Time generating a project, and going from `cookiecutter` to a green `make test`.

Run: uv run python benchmarks/bench_generate.py [--repeat N] [--baseline PATH] [--no-e2e]
Bars (ARCHITECTURE.md, "Bars"):
- generating a project takes no longer than generating cookiecutter-data-science;
- from `cookiecutter` to a green `make test` in a fresh project: at most 30 s on 2 cores
  with a warm package cache (the end-to-end run is done twice; the first fills uv's cache).
  Printed per step (cookiecutter, make setup, make test), so it shows where time goes.

The baseline is cookiecutter-data-science v2 when `--baseline` names a local checkout of
its template (its GitHub repository, which may be unreachable: its PyPI package holds the
`ccds` command, not the template). A ccds v2 template (a `ccds.json` at its root) only
generates through `ccds` (plain `cookiecutter` prints DEPRECATED and exits 1), so it is
timed as `python -m ccds --no-input PATH`, with the `ccds` on PATH or else the one
`uvx --from cookiecutter-data-science` installs; any other PATH runs through plain
`cookiecutter`. Without `--baseline`, the baseline is this template rendered by plain
cookiecutter with our hooks and Jinja extension removed, which prices what answer checks,
the dslc pin and `git init` add. Reports only; always exits 0.
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
E2E_BAR_SECONDS = 30.0
# As a user's shell has it: no UV_COMPILE_BYTECODE (make setup decides), no outer venv.
ENV = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
for name in ("VIRTUAL_ENV", "UV_COMPILE_BYTECODE", "UV_LINK_MODE"):
    ENV.pop(name, None)


def is_ccds(template: Path) -> bool:
    """A cookiecutter-data-science v2 template, which generates only through `ccds`."""
    return (template / "ccds.json").is_file()


def ccds_python() -> str:
    """An interpreter that has the `ccds` package: the one behind `ccds` on PATH, else
    the environment `uvx --from cookiecutter-data-science` makes (PyPI, cached)."""
    found = shutil.which("ccds")
    if found:
        first = Path(found).read_text(errors="replace").splitlines()[0]
        if first.startswith("#!"):
            return first[2:].strip()
    command = ["uvx", "--from", "cookiecutter-data-science", "python", "-c"]
    result = subprocess.run(
        [*command, "import sys; print(sys.executable)"],
        capture_output=True,
        text=True,
        env=ENV,
        check=False,
    )
    if result.returncode != 0:
        sys.exit(f"error: cannot get ccds (cookiecutter-data-science from PyPI): {result.stderr}")
    return result.stdout.strip()


def generate_command(template: Path, output: Path) -> list[str]:
    if is_ccds(template):
        return [ccds_python(), "-m", "ccds", "--no-input", "-o", str(output), str(template)]
    return [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(output), str(template)]


def bake_seconds(template: Path, workdir: Path) -> float:
    """Seconds for one `cookiecutter --no-input` (or `ccds`) run into a fresh folder."""
    output = Path(tempfile.mkdtemp(dir=workdir))
    command = generate_command(template, output)
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=ENV, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"error: {' '.join(command[:3])} failed: {(result.stdout + result.stderr)[-800:]}")
    return elapsed


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


def end_to_end_seconds(workdir: Path) -> dict[str, float]:
    """Seconds of `cookiecutter`, `make setup` and `make test` in a fresh project."""
    output = Path(tempfile.mkdtemp(dir=workdir))
    project = output / "my-ds-project"
    steps = {
        "cookiecutter": generate_command(ROOT, output),
        "make setup": ["make", "-C", str(project), "setup"],
        "make test": ["make", "-C", str(project), "test"],
    }
    taken = {}
    for name, step in steps.items():
        start = time.perf_counter()
        result = subprocess.run(step, capture_output=True, text=True, env=ENV, check=False)
        taken[name] = time.perf_counter() - start
        if result.returncode != 0:
            sys.exit(f"error: {name} failed:\n{result.stdout[-2000:]}{result.stderr}")
    return taken


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="bakes per template (median)")
    parser.add_argument(
        "--baseline", type=Path, help="a local cookiecutter-data-science checkout (run with ccds)"
    )
    parser.add_argument("--no-e2e", action="store_true", help="skip the make setup/test timing")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        baseline = args.baseline or plain_copy(workdir)
        label = "cookiecutter-data-science" if args.baseline else "plain render, no hooks"
        if args.baseline and is_ccds(args.baseline):
            label += " (ccds)"
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
            steps = end_to_end_seconds(workdir)
            e2e = sum(steps.values())
            verdict = "PASS" if e2e <= E2E_BAR_SECONDS else "FAIL"
            shown = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in steps.items())
            print(
                f"cookiecutter -> green make test, warm cache: {e2e:6.1f} s ({shown}) "
                f"= {e2e / E2E_BAR_SECONDS:.2f} of the {E2E_BAR_SECONDS:.0f} s bar -> {verdict}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
