"""Tests of params, tags and buffered metrics."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

mlflow = pytest.importorskip("mlflow", reason="mlflow not installed (dslc[tracking] extra)")
pytest.importorskip("filelock", reason="filelock not installed (dslc[tracking] extra)")

from mlflow.tracking import MlflowClient  # noqa: E402
from tracking_support import client, run_data  # noqa: E402

from dslc import tracking  # noqa: E402
from dslc.tracking import _writer  # noqa: E402


@dataclass
class _Opt:
    lr: float = 0.1
    layers: tuple[int, ...] = (64, 32)


def test_params_are_flattened_stringified_and_batched(
    tproj: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = MlflowClient.log_batch

    def counting(self: MlflowClient, run_id: str, *args: Any, **kw: Any) -> Any:
        calls.append(len(kw.get("params") or ()))
        return real(self, run_id, *args, **kw)

    params: dict[str, Any] = {"model": {"C": 1, "kernel": {"name": "rbf"}}, "opt": _Opt()}
    params.update({f"p{i:03d}": i for i in range(250)})
    with tracking.run(params=params) as run:
        monkeypatch.setattr(MlflowClient, "log_batch", counting)
        run.log_params({"seed": None, "model": {"C": 1}})  # same value again: a no-op
        with pytest.raises(tracking.TrackingError, match="already"):
            run.log_param("model.C", 2)
    logged = run_data(run.id).data.params
    assert logged["model.C"] == "1" and logged["model.kernel.name"] == "rbf"
    assert logged["opt.lr"] == "0.1" and logged["opt.layers"] == "(64, 32)"
    assert logged["seed"] == "None" and logged["p249"] == "249"
    assert len(logged) == 255
    assert calls[0] == 1  # only "seed" was new
    assert max(_writer.MAX_PARAMS_PER_BATCH, *calls) == _writer.MAX_PARAMS_PER_BATCH


def test_limits_match_mlflow() -> None:
    from mlflow.utils import validation as v

    assert _writer.MAX_PARAMS_PER_BATCH == v.MAX_PARAMS_TAGS_PER_BATCH
    assert _writer.MAX_METRICS_PER_BATCH == v.MAX_METRICS_PER_BATCH
    assert _writer.MAX_PARAM_VALUE_LEN == v.MAX_PARAM_VAL_LENGTH
    assert _writer.MAX_TAG_VALUE_LEN == v.MAX_TAG_VAL_LENGTH


def test_metrics_are_buffered_and_batched(tproj: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []
    real = MlflowClient.log_batch

    def counting(self: MlflowClient, run_id: str, *args: Any, **kw: Any) -> Any:
        if kw.get("metrics"):
            sizes.append(len(kw["metrics"]))
        return real(self, run_id, *args, **kw)

    monkeypatch.setattr(MlflowClient, "log_batch", counting)
    before = int(time.time() * 1000)
    with tracking.run() as run:
        for step in range(999):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        assert client().get_metric_history(run.id, "loss") == []  # still buffered
        run.log_metric("loss", 0.0, step=999)  # a full batch: sent now
        assert len(client().get_metric_history(run.id, "loss")) == 1000
        for step in range(1000, 2400):  # 2,800 values: 2 full batches sent, 800 waiting
            tracking.log_metrics({"loss": 0.0, "acc": 1.0}, step=step)
        assert run.flush() == 800 and run.flush() == 0
        run.log_metric("late", 1)  # sent at the end of the run
    history = client().get_metric_history(run.id, "loss")
    assert sorted(m.step for m in history) == list(range(2400))
    assert history[0].timestamp >= before and history[0].value == 1.0
    assert len(client().get_metric_history(run.id, "acc")) == 1400
    assert run_data(run.id).data.metrics["late"] == 1.0
    assert sizes[0] == 1000 and all(s <= 1000 for s in sizes)
