"""Reads of data for hashing in a DVC project: dslc and DVC coordinated (DVC hashes what
it versions, dslc fingerprints after DVC's rewrites and takes DVC's md5 from its pointer
files) vs the same day with each tool hashing on its own, in the same run.

The day of one big raw file, through the real `dslc` and `dvc` commands:

1. add it: `dslc data add` (baseline: dslc's fingerprint, then `dvc add`);
2. a DVC stage that loads it and saves a copy with `data.save` (baseline: and
   fingerprints the copy at once);
3. the next step: that copy's fingerprint and DVC md5, as a tracked run records them
   (baseline: the md5 by reading the file);
4. `dvc repro` again, with nothing changed.

Every process logs each file dslc or DVC reads to hash (helpers/tests/hashlog). The bar:
new content read at most twice in all (at most once by DVC, at most once by dslc), and
step 4 reads nothing. The script prints the reads per step and per content, and the
megabytes read and the time of the whole day against the baseline.
Run: uv run --project helpers python benchmarks/bench_dvc.py [MEGABYTES]
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZE_MB = int(sys.argv[1]) if len(sys.argv) > 1 else 256
HASHLOG = Path(__file__).resolve().parents[1] / "helpers" / "tests" / "hashlog"
PYTHON = sys.executable
DSLC = str(Path(PYTHON).with_name("dslc"))
STAGE = f"""\
stages:
  copy:
    cmd: {PYTHON} stage_copy.py
    deps:
      - data/raw/big.pkl
    outs:
      - data/processed/copy.pkl
"""
COPY = 'from dslc import data\ndata.save(data.load("big"), "copy")\n'
DAY = {  # what each step runs, coordinated; the baseline differs where it says
    "add": ["{dslc}", "data", "add", "big", "raw/big.pkl", "--replace"],
    "stage": ["{python}", "-m", "dvc", "repro", "--quiet"],
    "next": [
        "{python}",
        "-c",
        "from dslc import config, data, _dvc as dvc\n"
        "data.fingerprint('copy')\n"
        "assert dvc.file_md5(config.project_root(), data.path('copy'))\n",
    ],
    "repro": ["{python}", "-m", "dvc", "repro", "--quiet"],
}
BASELINE = {
    "add": [
        "sh",
        "-c",
        "'{python}' -c \"from dslc import data; data.fingerprint('raw/big.pkl')\""
        " && '{python}' -m dvc add -q data/raw/big.pkl",
    ],
    "next": [
        "{python}",
        "-c",
        "from dslc import data, _fingerprint as fingerprint\n"
        "data.fingerprint('copy')\n"
        "fingerprint.hash_file(data.path('copy'), algo='md5')\n",
    ],
}
STEPS = (
    "add (dslc data add)",
    "stage: load, save a copy",
    "next step: fingerprint, md5",
    "dvc repro, unchanged",
)


def project(folder: Path, size_mb: int, copy: str) -> Path:
    root = folder / "project"
    for sub in ("data/raw", "data/processed"):
        (root / sub).mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "bench"\n\n[tool.dslc]\n')
    (root / "data" / "catalog.yml").write_text(
        "datasets:\n  big:\n    location: raw/big.pkl\n  copy:\n    location: processed/copy.pkl\n"
    )
    (root / "dvc.yaml").write_text(STAGE)
    (root / "stage_copy.py").write_text(copy)  # not copy.py: `python -m` would import it
    with open(root / "data" / "raw" / "big.pkl", "wb") as fh:
        pickle.dump(os.urandom(size_mb << 20), fh, protocol=5)
    old = time.time_ns() - 10_000_000_000  # written a while ago, as raw data usually is
    os.utime(root / "data" / "raw" / "big.pkl", ns=(old, old))
    for command in (["git", "init", "-q"], [PYTHON, "-m", "dvc", "init", "-q"]):
        subprocess.run(command, cwd=root, check=True)
    subprocess.run([PYTHON, "-m", "dvc", "config", "core.analytics", "false"], cwd=root, check=True)
    return root


def day(
    folder: Path, coordinated: bool, size_mb: int
) -> tuple[list[list[tuple[str, str]]], list[float], Path]:
    """Reads logged in each step, the seconds each step took, and the project."""
    copy = COPY if coordinated else COPY + 'data.fingerprint("copy")\n'
    root = project(folder, size_mb, copy)
    log = folder / "hash.log"
    env = {**os.environ, "HASH_LOG": str(log), "PYTHONPATH": str(HASHLOG)}
    env["DVC_NO_ANALYTICS"] = "1"
    steps, seconds = [], []
    for step, command in DAY.items():
        if not coordinated:
            command = BASELINE.get(step, command)
        command = [part.format(dslc=DSLC, python=PYTHON) for part in command]
        log.write_text("")
        started = time.perf_counter()
        done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
        seconds.append(time.perf_counter() - started)
        if done.returncode != 0:
            sys.exit(f"`{' '.join(command)}` failed:\n{done.stdout}{done.stderr}")
        lines = [line.partition(" ")[::2] for line in log.read_text().splitlines()]
        steps.append([(tool, path) for tool, path in lines if "/memory:/" not in path])
    return steps, seconds, root


def megabytes(steps: list[list[tuple[str, str]]]) -> float:
    return sum(os.path.getsize(path) for step in steps for _, path in step) / (1 << 20)


def shown(reads: list[tuple[str, str]]) -> str:
    dslc = sum(tool == "dslc" for tool, _ in reads)
    return f"{len(reads)} (dslc {dslc}, dvc {len(reads) - dslc})"


def per_content(steps: list[list[tuple[str, str]]], root: Path) -> dict[str, list[str]]:
    """The tools that read each content of the day (the raw file, its copy), in order."""
    files = {"raw file": root / "data/raw/big.pkl", "its copy": root / "data/processed/copy.pkl"}
    return {
        name: [tool for step in steps for tool, path in step if path == str(path_)]
        for name, path_ in files.items()
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        for warm in ("warm-base", "warm-on"):  # imports and DVC's first start; not measured
            day(Path(folder, warm), warm == "warm-on", 1)
        base, base_s, base_root = day(Path(folder, "base"), False, SIZE_MB)
        on, on_s, on_root = day(Path(folder, "on"), True, SIZE_MB)
        base_mb, on_mb = megabytes(base), megabytes(on)
        base_content, on_content = per_content(base, base_root), per_content(on, on_root)
    print(f"file: {SIZE_MB} MB; reads of a file to hash it, each tool alone vs coordinated")
    print(f"{'step':32} {'each alone':>22} {'coordinated':>22}   seconds alone, coordinated")
    for i, name in enumerate(STEPS):
        print(
            f"{name:32} {shown(base[i]):>22} {shown(on[i]):>22}   {base_s[i]:6.2f} {on_s[i]:6.2f}"
        )
    print(f"{'all steps':32} {sum(map(len, base)):>22} {sum(map(len, on)):>22}")
    met = (
        all(
            len(tools) <= 2 and tools.count("dvc") <= 1 and tools.count("dslc") <= 1
            for tools in on_content.values()
        )
        and not on[-1]
    )
    for name in on_content:
        alone, together = base_content[name], on_content[name]
        print(
            f"reads of the {name:10} each alone {len(alone)} {alone}, coordinated"
            f" {len(together)} {together}"
        )
    print(
        f"bar (new content: at most once by DVC and once by dslc; unchanged: never): "
        f"{'met' if met else 'NOT MET'}"
    )
    print(
        f"MB read to hash: alone {base_mb:.0f}, coordinated {on_mb:.0f},"
        f" ratio {on_mb / base_mb:.2f}"
    )
    alone_s, together_s = sum(base_s), sum(on_s)
    print(
        f"the whole day: alone {alone_s:.2f} s, coordinated {together_s:.2f} s,"
        f" ratio {together_s / alone_s:.2f} (DVC's starts dominate at small sizes)"
    )
    if not met:
        sys.exit(1)


if __name__ == "__main__":
    main()
