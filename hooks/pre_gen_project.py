"""Last check before cookiecutter writes files: valid answers, and never over a project.

The answers were already validated while they were rendered (hooks/answers.py); this
repeats it for paths that skip rendering, such as `cookiecutter --replay`. The working
directory is the project folder cookiecutter just created, or an existing one when it
was told to overwrite (--overwrite-if-exists): that one we refuse to touch.
"""

import json
import sys
from pathlib import Path

# JSON in a raw string: no answer (quotes, backslashes) can break the code.
ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")
# Absolute, unlike _repo_dir (`cookiecutter .` gives "."), and set under cruft too.
TEMPLATE_DIR = json.loads(r""" {{ cookiecutter | template_dir | tojson }} """)  # spaces: no """"


def main() -> int:
    # cruft renders updates into new, empty folders, which the check below lets pass.
    repo_dir = Path(TEMPLATE_DIR)
    if (repo_dir / "hooks" / "answers.py").is_file():
        sys.path.insert(0, str(repo_dir / "hooks"))
        from answers import InvalidAnswer, validate

        try:
            validate(ANSWERS)
        except InvalidAnswer as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    target = Path.cwd()
    if any(target.iterdir()):
        print(
            f"error: {target} already exists and is not empty; ds-template never overwrites"
            " a project (use `make update` inside it, or choose another project_slug)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
