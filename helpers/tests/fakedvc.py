"""A stand-in for DVC through a public seam: a ``dvc`` package first on PYTHONPATH, so the
``python -m dvc ARGS`` that dslc runs records ARGS and answers from a table instead.

An answer ``"FAIL:msg"`` prints DVC's ``ERROR: msg`` and exits 1, as DVC fails.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

MAIN = """\
import json, os, sys, time
folder = os.environ["FAKE_DVC"]
with open(os.path.join(folder, "calls.jsonl"), "a") as log:
    log.write(json.dumps([time.time_ns(), sys.argv[1:]]) + "\\n")
with open(os.path.join(folder, "answers.json")) as table:
    answer = json.load(table).get(" ".join(sys.argv[1:]), "")
if answer.startswith("FAIL:"):
    sys.exit("ERROR: " + answer.removeprefix("FAIL:"))
print(answer, end="")
"""


class Answers(dict[str, str]):
    """The table of answers, saved where the stand-in reads it at each change."""

    def __init__(self, file: Path, answers: dict[str, str]) -> None:
        super().__init__(answers)
        self.file = file
        self.save()

    def __setitem__(self, key: str, value: str) -> None:
        super().__setitem__(key, value)
        self.save()

    def save(self) -> None:
        self.file.write_text(json.dumps(self), encoding="utf-8")


class FakeDvc:
    def __init__(self, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        (folder / "dvc").mkdir(parents=True)
        (folder / "dvc" / "__init__.py").write_text("")
        (folder / "dvc" / "__main__.py").write_text(MAIN)
        self.folder = folder
        self.answers = Answers(folder / "answers.json", {})
        monkeypatch.setenv("FAKE_DVC", str(folder))
        path = os.pathsep.join(p for p in (str(folder), os.getenv("PYTHONPATH")) if p)
        monkeypatch.setenv("PYTHONPATH", path)

    def reset(self, answers: dict[str, str] | None = None) -> FakeDvc:
        """Forget the calls so far and answer from ``answers`` from now on."""
        (self.folder / "calls.jsonl").unlink(missing_ok=True)
        self.answers = Answers(self.folder / "answers.json", answers or {})
        return self

    def log(self) -> list[tuple[int, tuple[str, ...]]]:
        """(time_ns, args) of each command run so far."""
        try:
            lines = (self.folder / "calls.jsonl").read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        return [(at, tuple(args)) for at, args in map(json.loads, lines)]

    @property
    def calls(self) -> list[tuple[str, ...]]:
        return [args for _, args in self.log()]
