"""Record datasets used through :mod:`dslc.data` as MLflow run inputs.

The dataset entity is built from what :mod:`dslc.data` already knows (name, location,
full-content fingerprint, format): nothing is re-read, and the digest is dslc's
fingerprint rather than MLflow's digest of the first 10,000 rows.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

from .._events import DatasetUse
from .._secrets import Redactor
from ._writer import RunWriter

# MLflow stores a dataset digest in a 36-character column.
MAX_DIGEST_LEN = 36
CONTEXT_TAG = "mlflow.data.context"  # the "context" MLflow's UI shows beside an input
_TAG_KEY_UNSAFE = re.compile(r"[^\w\-. /]")


def display_name(use: DatasetUse) -> str:
    """Catalog name, else the file name of the location."""
    if use.name:
        return use.name
    path = urlparse(use.location).path if "://" in use.location else use.location
    return PurePosixPath(path.replace("\\", "/")).name or use.location


def digest(fingerprint: str | None, query: str | None = None) -> str:
    """MLflow digest from a dslc fingerprint ``"<algo>:<hex>"`` (hex part, first 36 chars).

    A live SQL read has no fingerprint: its digest identifies the query (not the data),
    so the MLflow UI tells two queries of one connection apart.
    """
    if not fingerprint:
        if query:
            return "query-" + hashlib.sha256(query.encode()).hexdigest()[: MAX_DIGEST_LEN - 6]
        return "unknown"
    return fingerprint.rsplit(":", 1)[-1][:MAX_DIGEST_LEN] or "unknown"


def source_of(location: str, query: str | None = None) -> tuple[str, str]:
    """MLflow source type and source JSON, shaped like MLflow's own dataset sources.

    A SQL source (``sql://<CONNECTION_VARIABLE>``) is named by its connection variable
    and its query, never by the URL the variable holds.
    """
    parsed = urlparse(location)
    scheme = parsed.scheme.lower()
    if scheme == "sql":
        connection = location.split("://", 1)[1]
        return "sql", json.dumps({"connection": connection, "query": query})
    if scheme in ("http", "https"):
        return "http", json.dumps({"url": location})
    # A one-letter scheme is a Windows drive ("C:\\data"), not a URL.
    if not scheme or scheme == "file" or len(scheme) == 1:
        return "local", json.dumps({"uri": location})
    return scheme, json.dumps({"uri": location})


def fingerprint_tag(name: str) -> str:
    """Run tag key holding a dataset's full fingerprint."""
    return f"dslc.data.{_TAG_KEY_UNSAFE.sub('_', name)}.fingerprint"


def dataset_input(use: DatasetUse, redactor: Redactor) -> Any:
    """Build the ``mlflow.entities.DatasetInput`` for one dataset use."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    location = redactor.scrub(use.location)  # an URL may carry credentials
    query = redactor.scrub(use.query) if use.query is not None else None
    source_type, source = source_of(location, query)
    profile = {"fingerprint": use.fingerprint, "format": use.format, "role": use.role}
    entity = Dataset(
        name=redactor.scrub(display_name(use)),
        digest=digest(use.fingerprint, query),
        source_type=source_type,
        source=source,
        profile=json.dumps(profile),
    )
    return DatasetInput(dataset=entity, tags=[InputTag(key=CONTEXT_TAG, value=use.role)])


class DatasetRecorder:
    """Records each distinct dataset use of one run once: an input, and a fingerprint tag."""

    def __init__(self, writer: RunWriter, redactor: Redactor, root: Path) -> None:
        self._writer = writer
        self._redactor = redactor
        self._root = root
        self._seen: set[DatasetUse] = set()
        self._lock = threading.Lock()

    def record(self, use: DatasetUse) -> None:
        """Log ``use`` as a run input unless the same use was recorded already."""
        with self._lock:
            if use in self._seen:
                return
            self._seen.add(use)
        self._writer.client.log_inputs(
            self._writer.run_id, datasets=[dataset_input(use, self._redactor)]
        )
        if use.fingerprint:
            name = self._redactor.scrub(display_name(use))
            self._writer.set_tags({fingerprint_tag(name): use.fingerprint})
        if use.role == "input":
            self._record_dvc_version(use)

    def _record_dvc_version(self, use: DatasetUse) -> None:
        """In a DVC project, the md5 DVC stores the file under: the version the remote
        serves and ``dslc reproduce`` checks out again."""
        from .. import _dvc as dvc

        if "://" in use.location or not dvc.enabled(self._root):
            return
        path = Path(use.location)
        if not (path.is_file() and path.is_relative_to(self._root)):
            return
        key = dvc.version_tag(path.relative_to(self._root))
        if _TAG_KEY_UNSAFE.search(key):  # MLflow refuses the key: the commit's data stands in
            return
        md5 = dvc.file_md5(self._root, path)  # None: DVC does not version what was read
        if md5 is not None:
            self._writer.set_tags({key: md5})
