"""Time `import dslc` against `import mlflow`, each in fresh interpreters.

Run: uv run --project helpers python benchmarks/bench_import.py [--repeat N]
Bar (ARCHITECTURE.md, "Bars"): import dslc costs under 5% of import mlflow.
Reports only; always exits 0.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

BAR = 0.05
# Timed inside the child so interpreter start-up is not counted, only the import itself.
PROBE = "import time; t = time.perf_counter(); import {mod}; print(time.perf_counter() - t)"


def time_import(module: str, repeat: int) -> float:
    """Median seconds to import ``module`` in a fresh interpreter."""
    times = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", PROBE.format(mod=module)],
            capture_output=True,
            text=True,
            check=True,
        )
        times.append(float(out.stdout.strip()))
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs per module (median)")
    args = parser.parse_args()
    time_import("dslc", 1)  # warm-up: byte-compile and fill the OS file cache
    time_import("mlflow", 1)
    dslc_s = time_import("dslc", args.repeat)
    mlflow_s = time_import("mlflow", args.repeat)
    ratio = dslc_s / mlflow_s
    print(f"import dslc:   {dslc_s * 1000:8.1f} ms (median of {args.repeat})")
    print(f"import mlflow: {mlflow_s * 1000:8.1f} ms (median of {args.repeat})")
    print(
        f"ratio dslc/mlflow: {ratio:.2%} (bar: < {BAR:.0%}) -> {'PASS' if ratio < BAR else 'FAIL'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
