"""Tests of logging models and registering them."""

from __future__ import annotations

from pathlib import Path

import pytest

mlflow = pytest.importorskip("mlflow", reason="mlflow not installed (dslc[tracking] extra)")
pytest.importorskip("filelock", reason="filelock not installed (dslc[tracking] extra)")

from dslc import tracking  # noqa: E402


def test_log_model_with_signature_and_register(tproj: Path) -> None:
    pd = pytest.importorskip("pandas")
    linear_model = pytest.importorskip("sklearn.linear_model")
    x = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    y = [0, 0, 1, 1]
    model = linear_model.LogisticRegression().fit(x, y)
    with tracking.run() as run:
        # Explicit requirements skip MLflow's requirement inference (a subprocess: slow).
        info = run.log_model(model, input_example=x.head(2), pip_requirements=["scikit-learn"])
        first = run.register_model(info, "demo-model")
        second = run.register_model("model", "demo-model")  # by the name given to log_model
    assert info.signature is not None
    assert info.signature.inputs.input_names() == ["a", "b"]
    assert info.signature.outputs is not None
    assert (str(first.version), str(second.version)) == ("1", "2")
    loaded = mlflow.pyfunc.load_model(f"models:/demo-model/{first.version}")
    assert list(loaded.predict(x)) == list(model.predict(x))
    assert list((tproj / "mlartifacts").rglob("MLmodel"))
    assert not (tproj / "mlruns").exists()
