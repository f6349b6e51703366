"""Counts every full read of a file for hashing, by dslc and by DVC, in any process.

Put this folder on PYTHONPATH and name a log file in HASH_LOG: Python imports this module
at start-up, and it wraps dslc's ``fingerprint.hash_file`` (its only hashing function)
and DVC's ``dvc_data.hashfile.hash.file_md5`` as those modules load, each call appending
``<tool> <path>`` to the log. The tests and benchmarks that say "nothing is hashed twice"
read it; nothing else does.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.util
import os
import sys

# module -> (function to wrap, the tool named in the log)
WRAP = {
    "dslc._fingerprint": ("hash_file", "dslc"),
    "dvc_data.hashfile.hash": ("file_md5", "dvc"),
}


def logged(function, tool):
    """``function(path, ...)``, appending ``<tool> <path>`` to $HASH_LOG at each call."""

    @functools.wraps(function)
    def wrapper(path, *args, **kwargs):
        with open(os.environ["HASH_LOG"], "a", encoding="utf-8") as log:
            log.write(f"{tool} {os.path.abspath(path)}\n")
        return function(path, *args, **kwargs)

    return wrapper


class _Wrapper(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name not in WRAP:
            return None
        sys.meta_path.remove(self)  # find the module as Python would
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module
        attribute, tool = WRAP[name]

        def exec_module(module):
            load(module)
            setattr(module, attribute, logged(getattr(module, attribute), tool))

        spec.loader.exec_module = exec_module
        return spec


if os.environ.get("HASH_LOG"):
    sys.meta_path.insert(0, _Wrapper())
