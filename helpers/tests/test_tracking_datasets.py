"""Tests of datasets used through dslc.data becoming run inputs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

mlflow = pytest.importorskip("mlflow", reason="mlflow not installed (dslc[tracking] extra)")
pytest.importorskip("filelock", reason="filelock not installed (dslc[tracking] extra)")

from tracking_support import run_data  # noqa: E402

from dslc import _events as events  # noqa: E402
from dslc import tracking  # noqa: E402


def _inputs(run_id: str) -> list[Any]:
    return list(run_data(run_id).inputs.dataset_inputs)


def test_published_datasets_become_run_inputs(tproj: Path) -> None:
    fp = "sha256:" + "ab" * 32
    location = str(tproj / "data" / "raw" / "iris.csv")
    use = events.DatasetUse("iris", location, fp, "csv", "input")
    with tracking.run() as outer:
        events.publish(use)
        events.publish(use)  # the same use twice: recorded once
        with tracking.run() as inner:  # only the innermost run records
            events.publish(events.DatasetUse(None, "s3://b/x/y.parquet", None, "parquet", "output"))
    assert not events.has_listeners()
    (record,) = _inputs(outer.id)
    assert record.dataset.name == "iris" and record.dataset.digest == fp[7:43]
    assert record.dataset.source_type == "local"
    assert json.loads(record.dataset.source) == {"uri": location}
    assert json.loads(record.dataset.profile)["fingerprint"] == fp
    assert {t.key: t.value for t in record.tags} == {"mlflow.data.context": "input"}
    assert run_data(outer.id).data.tags["dslc.data.iris.fingerprint"] == fp
    (remote,) = _inputs(inner.id)
    assert (remote.dataset.name, remote.dataset.source_type) == ("y.parquet", "s3")
    assert remote.tags[0].value == "output"


def test_data_load_and_save_record_full_fingerprints(tproj: Path) -> None:
    data = pytest.importorskip("dslc.data", reason="dslc.data is not available yet")
    with tracking.run() as run:
        frame = data.load("iris")
        data.save(frame, "processed/iris_copy.csv")
    by_name = {i.dataset.name: i for i in _inputs(run.id)}
    assert set(by_name) == {"iris", "iris_copy.csv"}
    fp_in = data.fingerprint("iris")
    assert by_name["iris"].dataset.digest == fp_in.split(":")[1][:36]
    assert run_data(run.id).data.tags["dslc.data.iris.fingerprint"] == fp_in
    fp_out = data.fingerprint("processed/iris_copy.csv")
    assert json.loads(by_name["iris_copy.csv"].dataset.profile)["fingerprint"] == fp_out


@dataclass(frozen=True)
class _SqlUse(events.DatasetUse):
    """A DatasetUse with the `query` field branch `data` adds (defined here until then)."""

    query: str | None = None


def test_sql_reads_are_named_by_connection_and_query(tproj: Path) -> None:
    (tproj / ".env").write_text(
        "WAREHOUSE_URL=postgresql://bob:wh-secret-9@db/sales\n", encoding="utf-8"
    )
    orders = "SELECT id, amount FROM orders"
    with tracking.run() as run:
        for query in (orders, "SELECT * FROM customers", orders):  # the repeat counts once
            events.publish(_SqlUse("orders", "sql://WAREHOUSE_URL", None, "sql", "input", query))
    records = _inputs(run.id)
    assert len(records) == 2
    by_query = {json.loads(r.dataset.source)["query"]: r.dataset for r in records}
    first = by_query[orders]
    assert first.source_type == "sql" and first.name == "orders"
    assert json.loads(first.source) == {"connection": "WAREHOUSE_URL", "query": orders}
    assert first.digest.startswith("query-") and len(first.digest) <= 36
    assert first.digest != by_query["SELECT * FROM customers"].digest
    assert "dslc.data.orders.fingerprint" not in run_data(run.id).data.tags
    assert "wh-secret-9" not in json.dumps([r.dataset.to_dictionary() for r in records])
