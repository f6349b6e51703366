"""Fingerprint a large file cold and warm with dslc, against hashlib.md5 on the same file.

Run: uv run --project helpers python benchmarks/bench_fingerprint.py [--size-mib 1024]
Bars (ARCHITECTURE.md, "Bars"):
  - re-checking an unchanged file takes < 1% of fingerprinting it cold;
  - dslc's cold throughput is at least hashlib.md5's (ratio >= 1.0).
Reports only; always exits 0.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

RECHECK_BAR = 0.01
THROUGHPUT_BAR = 1.0
BLOCK = 16 << 20


def make_file(path: Path, size_mib: int) -> None:
    """Write ``size_mib`` MiB of incompressible-looking bytes (a repeated random block)."""
    block = os.urandom(BLOCK)
    remaining = size_mib << 20
    with open(path, "wb") as fh:
        while remaining > 0:
            n = min(remaining, BLOCK)
            fh.write(block[:n])
            remaining -= n


def md5_file(path: Path, chunk: int) -> str:
    """Baseline: plain hashlib.md5 over the file, read in the same chunk size as dslc."""
    h = hashlib.md5()
    buf = bytearray(chunk)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def timed(fn: object, *args: object) -> float:
    start = time.perf_counter()
    fn(*args)  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="file size in MiB")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="dslc-bench-") as tmp:
        root = Path(tmp)
        (root / "pyproject.toml").write_text("[tool.dslc]\n", encoding="utf-8")
        (root / "data" / "raw").mkdir(parents=True)
        os.environ["DSLC_PROJECT_ROOT"] = str(root)
        from dslc import data
        from dslc._fingerprint import ALGO, CHUNK

        target = root / "data" / "raw" / "big.bin"
        print(f"writing {args.size_mib} MiB to {target} ...", flush=True)
        make_file(target, args.size_mib)
        cache = root / ".dslc" / "fingerprints.json"
        md5_times, cold_times, warm_times = [], [], []
        for _ in range(args.repeat):
            md5_times.append(timed(md5_file, target, CHUNK))
            cache.unlink(missing_ok=True)
            cold_times.append(timed(data.fingerprint, target))
        for _ in range(max(5, args.repeat)):
            warm_times.append(timed(data.fingerprint, target))
        md5_s, cold_s, warm_s = map(statistics.median, (md5_times, cold_times, warm_times))

    mib = args.size_mib
    recheck = warm_s / cold_s
    speed = md5_s / cold_s
    print(f"file: {mib} MiB; dslc algorithm: {ALGO}; chunk: {CHUNK >> 10} KiB; "
          f"medians of {args.repeat} (warm: {len(warm_times)})")  # fmt: skip
    print(f"dslc cold (cache empty): {cold_s:8.3f} s  ({mib / cold_s:7.0f} MiB/s)")
    print(f"dslc warm (unchanged):   {warm_s * 1000:8.3f} ms")
    print(f"hashlib.md5:             {md5_s:8.3f} s  ({mib / md5_s:7.0f} MiB/s)")
    print(f"recheck/cold: {recheck:.4%} (bar: < {RECHECK_BAR:.0%}) -> "
          f"{'PASS' if recheck < RECHECK_BAR else 'FAIL'}")  # fmt: skip
    print(f"dslc throughput / md5: {speed:.2f}x (bar: >= {THROUGHPUT_BAR:.1f}) -> "
          f"{'PASS' if speed >= THROUGHPUT_BAR else 'FAIL'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
