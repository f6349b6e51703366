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
    assert calls == [1]  # only "seed" was new


def test_long_values_are_cut_by_mlflow_after_the_secret_check(tproj: Path) -> None:
    with tracking.run(params={"long": "p" * 7000}, tags={"note": "t" * 9000}) as run:
        pass
    stored = run_data(run.id).data
    assert stored.params["long"] == "p" * 6000 and stored.tags["note"] == "t" * 8000


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
            tracking.active().log_metrics({"loss": 0.0, "acc": 1.0}, step=step)
        assert run.flush() == 800 and run.flush() == 0
        run.log_metric("late", 1)  # sent at the end of the run
    history = client().get_metric_history(run.id, "loss")
    assert sorted(m.step for m in history) == list(range(2400))
    assert history[0].timestamp >= before and history[0].value == 1.0
    assert len(client().get_metric_history(run.id, "acc")) == 1400
    assert run_data(run.id).data.metrics["late"] == 1.0
    assert sizes[0] == 1000 and all(s <= 1000 for s in sizes)


BAD_METRICS = [
    ("bad name!", 3.0), ("../up", 3.0), ("tab\there", 3.0), ("x" * 300, 3.0), ("", 3.0),
    ("m", "3.0"), ("m", None), ("m", 1j), ("m", [1.0]), ("m", 10**400), ("m", True),
]  # fmt: skip


@pytest.mark.parametrize(("bad", "value"), BAD_METRICS)
def test_a_bad_metric_is_dropped_alone_with_one_warning(
    tproj: Path, caplog: pytest.LogCaptureFixture, bad: str, value: Any
) -> None:
    np = pytest.importorskip("numpy")
    with caplog.at_level("WARNING", logger="dslc.tracking"), tracking.run() as run:
        run.log_metrics({"a1": 1.0, bad: value, "b1": np.float32(2.0)})
        run.log_metrics({bad: value}, step=1)  # the same metric again: no second warning
    assert run_data(run.id).data.metrics == {"a1": 1.0, "b1": 2.0}
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "dslc.tracking"]
    assert repr(bad)[:50] in warning and "dropped" in warning and "\n" not in warning
    assert run_data(run.id).info.status == "FINISHED"


def test_bad_steps_are_one_line(tproj: Path) -> None:
    with tracking.run() as run:
        with pytest.raises(tracking.TrackingError, match="step must be a whole number"):
            run.log_metric("m", 1.0, step="later")  # type: ignore[arg-type]
        run.log_metric("nan", float("nan"))  # MLflow stores NaN and infinities
        run.log_metric("inf", float("inf"))
    assert set(run_data(run.id).data.metrics) == {"nan", "inf"}


def test_a_batch_the_store_refuses_keeps_its_valid_metrics(
    tproj: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Should a name get past dslc's check (another server's rules), the batch is split."""
    from mlflow.exceptions import MlflowException

    real = MlflowClient.log_batch
    refusals = []

    def strict_server(self: MlflowClient, run_id: str, *args: Any, **kw: Any) -> Any:
        if any(m.key == "refused here" for m in kw.get("metrics") or ()):
            refusals.append(len(kw["metrics"]))
            raise MlflowException.invalid_parameter_value("no spaces here")
        return real(self, run_id, *args, **kw)

    monkeypatch.setattr(MlflowClient, "log_batch", strict_server)
    with caplog.at_level("WARNING", logger="dslc.tracking"), tracking.run() as run:
        for step in range(300):  # 601 values: one batch, sent by flush()
            run.log_metrics({"loss": 1.0 / (step + 1), "acc": step / 300}, step=step)
            if step == 123:
                run.log_metric("refused here", 1.0, step=step)
        assert run.flush() == 600
        split = len(refusals)  # the batch halved until the one refused metric was alone
        assert split > 1 and refusals[-1] == 1
        run.log_metrics({"refused here": 2.0, "loss": 0.5}, step=300)
        assert run.flush() == 1 and len(refusals) == split  # a refused name is not sent again
    history = client().get_metric_history(run.id, "loss")
    assert sorted(m.step for m in history) == list(range(301))
    assert len(client().get_metric_history(run.id, "acc")) == 300
    assert "refused here" not in run_data(run.id).data.metrics
    assert run_data(run.id).info.status == "FINISHED"
    (warning,) = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert "'refused here'" in warning and "no spaces here" in warning and "\n" not in warning
