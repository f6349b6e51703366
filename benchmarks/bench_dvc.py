"""Reads of data for hashing in a DVC project: dslc sharing its hashes with DVC's state
vs the same day with sharing turned off (``DSLC_DVC_STATE=off``), in the same run.

The day of one big raw file, through the real `dslc` and `dvc` commands:

1. `dslc data add` (dslc's fingerprint, then `dvc add`);
2. a DVC stage that loads it and saves a copy with `data.save` (`dvc repro`);
3. the next step: that copy's fingerprint and DVC md5, as a tracked run records them;
4. `dvc repro` again, with nothing changed.

Every process logs each file dslc or DVC reads to hash (helpers/tests/hashlog); the
script prints the reads per step, the megabytes read and the time of the whole day.
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
NEXT = (
    "from dslc import config, data, dvc\n"
    "data.fingerprint('copy')\n"
    "dvc.file_md5(config.project_root(), data.path('copy'))\n"
)
STEPS = (
    "dslc data add",
    "stage: load, save a copy",
    "next step: fingerprint, md5",
    "dvc repro, unchanged",
)


def project(folder: Path, size_mb: int) -> Path:
    root = folder / "project"
    for sub in ("data/raw", "data/processed"):
        (root / sub).mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "bench"\n\n[tool.dslc]\n')
    (root / "data" / "catalog.yml").write_text(
        "datasets:\n  copy:\n    location: processed/copy.pkl\n"
    )
    (root / "dvc.yaml").write_text(STAGE)
    (root / "stage_copy.py").write_text(COPY)  # not copy.py: `python -m` would import it as copy
    with open(root / "data" / "raw" / "big.pkl", "wb") as fh:
        pickle.dump(os.urandom(size_mb << 20), fh, protocol=5)
    old = time.time_ns() - 10_000_000_000  # written a while ago, as raw data usually is
    os.utime(root / "data" / "raw" / "big.pkl", ns=(old, old))
    for command in (["git", "init", "-q"], [PYTHON, "-m", "dvc", "init", "-q"]):
        subprocess.run(command, cwd=root, check=True)
    subprocess.run([PYTHON, "-m", "dvc", "config", "core.analytics", "false"], cwd=root, check=True)
    return root


def day(folder: Path, share: bool, size_mb: int) -> tuple[list[list[tuple[str, str]]], float]:
    """Reads logged in each step, and the seconds the whole day took."""
    root = project(folder, size_mb)
    log = folder / "hash.log"
    env = {
        **os.environ,
        "HASH_LOG": str(log),
        "PYTHONPATH": str(HASHLOG),
        "DVC_NO_ANALYTICS": "1",
        "DSLC_DVC_STATE": "on" if share else "off",
    }
    commands = (
        [DSLC, "data", "add", "big", "raw/big.pkl"],
        [PYTHON, "-m", "dvc", "repro", "--quiet"],
        [PYTHON, "-c", NEXT],
        [PYTHON, "-m", "dvc", "repro", "--quiet"],
    )
    steps, started = [], time.perf_counter()
    for command in commands:
        log.write_text("")
        done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"`{' '.join(command)}` failed:\n{done.stdout}{done.stderr}")
        lines = [line.partition(" ")[::2] for line in log.read_text().splitlines()]
        steps.append([(tool, path) for tool, path in lines if "/memory:/" not in path])
    return steps, time.perf_counter() - started


def megabytes(steps: list[list[tuple[str, str]]]) -> float:
    return sum(os.path.getsize(path) for step in steps for _, path in step) / (1 << 20)


def shown(reads: list[tuple[str, str]]) -> str:
    dslc = sum(tool == "dslc" for tool, _ in reads)
    return f"{len(reads)} (dslc {dslc}, dvc {len(reads) - dslc})"


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        for warm in ("warm-off", "warm-on"):  # imports and DVC's first start; not measured
            day(Path(folder, warm), warm == "warm-on", 1)
        off, off_s = day(Path(folder, "off"), False, SIZE_MB)
        on, on_s = day(Path(folder, "on"), True, SIZE_MB)
        off_mb, on_mb = megabytes(off), megabytes(on)
    print(f"file: {SIZE_MB} MB; reads of a file to hash it, sharing off vs shared")
    print(f"{'step':32} {'off':>22} {'shared':>22}")
    for name, a, b in zip(STEPS, off, on, strict=True):
        print(f"{name:32} {shown(a):>22} {shown(b):>22}")
    total_off, total_on = sum(map(len, off)), sum(map(len, on))
    print(f"{'all steps':32} {total_off:>22} {total_on:>22}")
    print(f"MB read to hash: off {off_mb:.0f}, shared {on_mb:.0f}, ratio {on_mb / off_mb:.2f}")
    print(f"the whole day: off {off_s:.2f} s, shared {on_s:.2f} s, ratio {on_s / off_s:.2f}")


if __name__ == "__main__":
    main()
