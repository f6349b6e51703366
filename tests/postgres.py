"""The session fixture `postgres`: a throwaway PostgreSQL cluster on loopback.

The cluster itself is helpers/tests/pgcluster.py, the one implementation that dslc's
tests use too (they cannot import from here, so this file loads it by path). It starts
the server binaries of Debian's `postgresql` package (as the `postgres` user when run as
root) with password logins over TCP, and removes everything at the end.

`.ci/run` installs the package when it is missing; elsewhere the tests that need a
cluster skip, saying why (on CI they fail instead: there they must run).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "helpers" / "tests" / "pgcluster.py"


def _load():
    """helpers/tests/pgcluster.py as the module `pgcluster` (dataclasses need it registered)."""
    if "pgcluster" not in sys.modules:
        spec = importlib.util.spec_from_file_location("pgcluster", _PATH)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["pgcluster"] = module
        spec.loader.exec_module(module)
    return sys.modules["pgcluster"]


pgcluster = _load()
Cluster = pgcluster.Cluster
Unavailable = pgcluster.Unavailable
throwaway_cluster = pgcluster.throwaway_cluster
free_port = pgcluster.free_port


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """One throwaway cluster for the whole test session (see the module docstring)."""
    with contextlib.ExitStack() as stack:
        try:
            cluster = stack.enter_context(throwaway_cluster())
        except Unavailable as exc:
            if os.environ.get("CI"):
                pytest.fail(f"PostgreSQL is required on CI and cannot be had: {exc}")
            pytest.skip(f"no PostgreSQL server: {exc}")
        yield cluster
