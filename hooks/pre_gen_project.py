"""Runs once cookiecutter has made the project folder, before it writes any file in it.

Its work is done while cookiecutter renders this file, in cookiecutter's own process: the
filter below claims the project folder for this run (hooks/answers.py), so that a second
generation into the same folder, both with --overwrite-if-exists say, stops in one line
instead of mixing its files with ours. A failing hook script could not say so in one line,
and cookiecutter would delete the folder it made, even while the other run writes in it.
"""

# {{ cookiecutter | claim_project_folder }}
