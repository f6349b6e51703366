from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest

from dslc import _events as events
from dslc import data
from dslc._events import DatasetUse


def test_subscribe_unsubscribe() -> None:
    got: list[DatasetUse] = []
    stop = events.subscribe(got.append)
    use = DatasetUse("x", "/abs/x.csv", None, "csv", "input")
    events.publish(use)
    stop()
    events.publish(use)
    assert got == [use]
    assert not events.has_listeners()


def test_failing_listener_only_warns(caplog: pytest.LogCaptureFixture) -> None:
    got: list[DatasetUse] = []

    def broken(use: DatasetUse) -> None:
        raise RuntimeError("tracking is down")

    stops = [events.subscribe(broken), events.subscribe(got.append)]
    with caplog.at_level(logging.WARNING, logger="dslc._events"):
        events.publish(DatasetUse(None, "/x", None, "csv", "output"))
    for stop in stops:
        stop()
    assert len(got) == 1
    assert "tracking is down" in caplog.text


def test_load_and_save_publish(project: Path) -> None:
    got: list[DatasetUse] = []
    stop = events.subscribe(got.append)
    try:
        df = data.load("iris")
        data.save(df, "interim/copy.parquet")
    finally:
        stop()
    assert [u.role for u in got] == ["input", "output"]
    inp, out = got
    assert inp.name == "iris" and inp.format == "csv"
    assert inp.location == str(project / "data" / "raw" / "iris.csv")
    assert inp.fingerprint == data.fingerprint("iris")
    assert out.name is None and out.format == "parquet"
    assert out.fingerprint == data.fingerprint("interim/copy.parquet")


def test_loading_survives_a_broken_listener(project: Path) -> None:
    def broken(use: DatasetUse) -> None:
        raise ValueError("boom")

    stop = events.subscribe(broken)
    try:
        assert isinstance(data.load("iris"), pd.DataFrame)
    finally:
        stop()


def test_loading_drifted_catalog_data_warns(
    project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cat = project / "data" / "catalog.yml"
    cat.write_text(cat.read_text() + "    fingerprint: sha256:00ff\n", encoding="utf-8")
    stop = events.subscribe(lambda use: None)
    try:
        with caplog.at_level(logging.WARNING, logger="dslc.data"):
            data.load("iris")
    finally:
        stop()
    assert "dataset 'iris' changed since it was recorded" in caplog.text
