"""Hashing passes over one data file in a DVC project: dslc sharing its reads with DVC's
md5 vs a baseline that hashes separately, in the same run.

The day of one raw file: `dslc data add` (dslc's fingerprint, then `dvc add`), then a
tracked run loads it (dslc's fingerprint, and the DVC md5 the run records).

- baseline: every step hashes on its own: a sha256 pass for the catalog, `dvc add`, a
  sha256 pass at load (DVC rewrote the file, so its size/times/inode stamp changed) and
  an md5 pass for the run's data-version tag;
- shared: one read gives dslc's sha256 and DVC's md5 together; after `dvc add` both carry
  over to the rewritten file, so the load and the run tag read nothing.

`dvc add` hashes the file once more in both (DVC keeps its own state); its time is
measured apart and left out of dslc's. Run: uv run --project helpers --with dvc python
benchmarks/bench_dvc.py [MEGABYTES]
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dslc import dvc, fingerprint, lineage

SIZE_MB = int(sys.argv[1]) if len(sys.argv) > 1 else 256


class Counter:
    """Counts the file hashing passes dslc makes (sha256 and md5) and dvc's wall time."""

    def __init__(self) -> None:
        self.passes = 0
        self.dvc_s = 0.0
        self.total_s = 0.0
        self._hash_file = fingerprint.hash_file
        self._md5 = dvc._md5
        self._run = dvc.run

    def __enter__(self) -> Counter:
        def hash_file(*args, **kwargs):
            self.passes += 1
            return self._hash_file(*args, **kwargs)

        def md5(path):
            self.passes += 1
            return self._md5(path)

        def run(*args, **kwargs):
            started = time.perf_counter()
            try:
                return self._run(*args, **kwargs)
            finally:
                self.dvc_s += time.perf_counter() - started

        fingerprint.hash_file, dvc._md5, dvc.run = hash_file, md5, run
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.total_s = time.perf_counter() - self._started
        fingerprint.hash_file, dvc._md5, dvc.run = self._hash_file, self._md5, self._run

    @property
    def dslc_s(self) -> float:
        return self.total_s - self.dvc_s


def project(folder: Path, name: str, size_mb: int = SIZE_MB) -> tuple[Path, Path]:
    root = folder / name
    (root / "data" / "raw").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "bench"\n\n[tool.dslc]\n')
    (root / "data" / "catalog.yml").write_text("datasets: {}\n")
    for command in (["git", "init", "-q"], [sys.executable, "-m", "dvc", "init", "-q"]):
        subprocess.run(command, cwd=root, check=True)
    data = root / "data" / "raw" / "big.bin"
    with open(data, "wb") as fh:
        for _ in range(size_mb):
            fh.write(os.urandom(1 << 20))
    old = time.time_ns() - 10_000_000_000  # not "racy": old enough for stamps to count
    os.utime(data, ns=(old, old))
    return root, data


def baseline(root: Path, data: Path) -> Counter:
    cache = None  # every step on its own: no stamp shared between them
    with Counter() as count:
        fingerprint.fingerprint_path(data, cache)  # catalog fingerprint
        dvc.run(root, "add", "--quiet", "data/raw/big.bin")
        fingerprint.fingerprint_path(data, cache)  # the load: the file was rewritten
        h = hashlib.md5(usedforsecurity=False)  # the run's data-version tag
        count.passes += 1
        with open(data, "rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    return count


def shared(root: Path, data: Path) -> Counter:
    os.chdir(root)
    with Counter() as count:
        lineage.add("big", "raw/big.bin", format="parquet", root=root)
        time.sleep(0.06)  # past the racy window, as any later step is (not counted as work)
        cache = root / ".dslc" / "fingerprints.json"
        fingerprint.fingerprint_path(data, cache)  # the load
        dvc.file_md5(root, data)  # the run's data-version tag
    return count


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        # Warm-up on 1 MB: imports, DVC's first start; not measured.
        baseline(*project(Path(folder), "warm-baseline", 1))
        shared(*project(Path(folder), "warm-shared", 1))
        a = baseline(*project(Path(folder), "baseline"))
        b = shared(*project(Path(folder), "shared"))
    # The total includes `dvc add` (its own md5 pass and the copy into its cache).
    print(
        f"file: {SIZE_MB} MB; `dvc add` took {a.dvc_s:.2f} s (baseline), {b.dvc_s:.2f} s (shared)"
    )
    print(f"dslc hashing passes: baseline {a.passes}, shared {b.passes}")
    print(f"ratio of dslc passes, shared / baseline: {b.passes / a.passes:.2f}")
    print(f"dslc's time besides dvc: baseline {a.dslc_s:.2f} s, shared {b.dslc_s:.2f} s,"
          f" ratio {b.dslc_s / a.dslc_s:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
