"""Time catalog lookups on a large catalog: in a new process, and again in the same one.

Run: uv run --project helpers python benchmarks/bench_catalog.py [--entries 2000] [--repeat 5]

A new process (a CLI call, a notebook kernel, a pipeline step) pays for reading the catalog
once: importing the YAML and validation libraries, parsing and validating the file. Later
lookups in the same process cost a ``stat``. Reports only; always exits 0.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

# Timed inside the child, from before `import dslc._catalog` to the first answer, so the
# interpreter's own start-up is not counted but everything the lookup needs is.
PROBE = textwrap.dedent(
    """
    import sys, time
    t = time.perf_counter()
    from dslc import _catalog as catalog
    assert "d7" in catalog.read(sys.argv[1])
    print(time.perf_counter() - t)
    """
)


def make_catalog(root: Path, entries: int) -> Path:
    """A catalog of ``entries`` file datasets, each with the fields a real one has."""
    (root / "data").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'b'\n\n[tool.dslc]\n")
    body = "".join(
        f"  d{i}:\n    location: processed/d{i}.parquet\n    description: dataset {i}\n"
        f"    parents: [d{i - 1}]\n    load_options: {{columns: [a, b]}}\n"
        f"    fingerprint: sha256:{i:064x}\n"
        for i in range(entries)
    ).replace("    parents: [d-1]\n", "")
    file = root / "data" / "catalog.yml"
    file.write_text("# header\ndatasets:\n" + body, encoding="utf-8")
    return file


def new_process(file: Path, repeat: int) -> float:
    """Median seconds to the first lookup in a fresh interpreter."""
    times = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", PROBE, str(file)],
            capture_output=True,
            text=True,
            check=True,
        )
        times.append(float(out.stdout.strip()))
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=2000, help="datasets in the catalog")
    parser.add_argument("--repeat", type=int, default=5, help="new processes (median)")
    parser.add_argument("--lookups", type=int, default=1000, help="lookups in one process")
    args = parser.parse_args()
    from dslc import _catalog as catalog

    with tempfile.TemporaryDirectory(prefix="dslc-bench-") as tmp:
        file = make_catalog(Path(tmp), args.entries)
        time.sleep(0.05)  # past the timestamp tick, so the parsed catalog may be remembered
        new_process(file, 1)  # warm-up: byte-compile, fill the OS cache
        cold = new_process(file, args.repeat)
        catalog.read(file)  # this process parses it once
        start = time.perf_counter()
        for i in range(args.lookups):
            catalog.read(file)[f"d{i % args.entries}"]
        again = (time.perf_counter() - start) / args.lookups
        print(f"catalog of {args.entries} entries ({file.stat().st_size >> 10} KiB)")
        print(f"first lookup in a new process, parsing: {cold * 1000:8.1f} ms (median)")
        print(f"later lookups in the same process:      {again * 1e6:8.1f} us each")
        print(f"  keeping the parse buys: {cold / again:,.0f}x a lookup")
    return 0


if __name__ == "__main__":
    sys.exit(main())
