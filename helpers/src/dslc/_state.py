"""``<root>/.dslc``: dslc's caches and locks, inside the project and owned by its user."""

from __future__ import annotations

from pathlib import Path


def state_dir(root: Path) -> Path:
    folder = root / ".dslc"
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        # Ignore itself, so caches stay out of git even if the project's .gitignore lacks it.
        (folder / ".gitignore").write_text("*\n", encoding="utf-8")
    return folder
