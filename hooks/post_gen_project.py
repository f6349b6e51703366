"""Finish the generated project: drop unselected options, create .env, start git.

Directories cannot be made conditional by their names in cookiecutter, so options that
remove whole folders are applied here, and so is the example's problem: where the files
differ by problem, the template holds `<name>.<problem>.<suffix>` for each, and the chosen
one becomes `<name>.<suffix>`. Runs inside the new project folder, once every file
is written: rendering this file released the folder that pre_gen_project.py claimed.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")
# {{ cookiecutter | release_project_folder }}
CI = ANSWERS["ci"]
DATA_VERSIONING = ANSWERS["data_versioning"]
# What exists only for DVC; the other files speak of DVC only inside Jinja conditionals.
DVC_FILES = (".dvc", ".dvcignore", "dvc.yaml")
PROBLEM = ANSWERS["problem"]
PROBLEMS = ("classification", "regression")  # as PROBLEMS in hooks/answers.py


def select_problem_files() -> None:
    """Each file that differs by problem: the chosen problem's under its final name."""
    for path in sorted(p for p in Path().rglob("*.*.*") if p.is_file()):
        name, problem, suffix = path.name.rsplit(".", 2)
        if problem == PROBLEM:
            path.rename(path.with_name(f"{name}.{suffix}"))
        elif problem in PROBLEMS:
            path.unlink()


def prune_unselected_options() -> None:
    if CI == "none":
        shutil.rmtree(Path(".github", "workflows"))
    if DATA_VERSIONING == "none":
        for name in DVC_FILES:
            path = Path(name)
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()


def create_env_file() -> None:
    """.env holds local settings and secrets; it is git-ignored, so start from the example."""
    env = Path(".env")
    if not env.exists():
        shutil.copyfile(".env.example", env)


def _inside_git_work_tree() -> bool:
    result = subprocess.run(
        ["git", "rev-parse", "--is-inside-work-tree"], capture_output=True, text=True, check=False
    )
    return result.returncode == 0 and result.stdout.strip() == "true"


def init_git() -> None:
    """A repository from the start: pre-commit hooks and MLflow's git tags need one."""
    if shutil.which("git") is None:
        print("note: git not found; run `git init && make setup` once git is installed")
        return
    if _inside_git_work_tree():
        return  # generated inside another repository (e.g. a monorepo): leave it to that one
    # `cruft update` also runs this hook, in the two scratch renders it diffs (old and new
    # template commit). The .git made there must stay out of that diff: the project's
    # `[tool.cruft] skip` lists ".git" (and ".env"), and tests/test_cruft.py checks it.
    subprocess.run(["git", "init", "--quiet", "--initial-branch=main"], check=True)
    # Staged, not committed (the author may not have a git identity yet): `make lint`
    # checks every file straight away, and the first commit is one `git commit` away.
    subprocess.run(["git", "add", "--all"], check=True)


def main() -> int:
    select_problem_files()
    prune_unselected_options()
    create_env_file()
    init_git()
    return 0


if __name__ == "__main__":
    sys.exit(main())
