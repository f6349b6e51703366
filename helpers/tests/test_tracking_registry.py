"""Tests of the registry (register, promote, champion, promote_if_better, model_uri) and of
the `dslc runs` and `dslc promote` commands, on a real SQLite store in a temporary project."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

mlflow = pytest.importorskip("mlflow", reason="mlflow not installed (dslc[tracking] extra)")
pytest.importorskip("filelock", reason="filelock not installed (dslc[tracking] extra)")
pd = pytest.importorskip("pandas")
pytest.importorskip("sklearn")

from sklearn.linear_model import LogisticRegression  # noqa: E402

from dslc import cli, tracking  # noqa: E402

X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
Y = [0, 0, 1, 1]
SETTINGS = 'model = "demo"\nmetric = "score"\nhigher_is_better = true\n'


def settings(root: Path, text: str = SETTINGS) -> None:
    """Append keys to the [tool.dslc] table (the last table of the fixture's pyproject)."""
    with (root / "pyproject.toml").open("a", encoding="utf-8") as fh:
        fh.write(text)


@pytest.fixture
def rproj(tproj: Path) -> Path:
    settings(tproj)
    return tproj


def train(metrics: dict[str, float], params: dict[str, Any] | None = None) -> Any:
    """A run that logs metrics and a model, registered under the project's model name."""
    with tracking.run(params=params) as run:
        run.log_metrics(metrics)
        info = run.log_model(LogisticRegression().fit(X, Y), pip_requirements=["scikit-learn"])
        return tracking.register(info)


def one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(exc.value)
    assert "\n" not in text and text
    return text


def cli_run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- promote_if_better ------------------------------------------------------------------


def test_the_champion_changes_only_for_a_better_version(rproj: Path) -> None:
    assert tracking.champion() is None
    v1 = train({"score": 0.8})
    first = tracking.promote_if_better(v1)
    assert first.promoted and first.previous is None and "first champion" in first.reason
    assert str(tracking.champion().version) == "1"  # type: ignore[union-attr]

    worse = tracking.promote_if_better(train({"score": 0.7}))
    assert not worse.promoted
    assert str(worse) == (
        "champion of 'demo' stays version 1: version 2 has score = 0.7, not higher than 0.8"
    )
    tie = tracking.promote_if_better(train({"score": 0.8}))
    assert not tie.promoted  # a tie does not beat the champion

    better = tracking.promote_if_better(train({"score": 0.9}))
    assert better.promoted and str(better.previous.version) == "1"  # type: ignore[union-attr]
    assert better.reason == "champion of 'demo': version 1 -> 4 (score 0.8 -> 0.9)"
    assert str(tracking.champion().version) == "4"  # type: ignore[union-attr]
    again = tracking.promote_if_better(4)
    assert not again.promoted and "already champion" in again.reason

    assert tracking.model_uri() == "models:/demo@champion"
    loaded = mlflow.pyfunc.load_model(tracking.model_uri())
    assert list(loaded.predict(X)) == Y


def test_lower_is_better_and_explicit_arguments(tproj: Path) -> None:
    settings(tproj, 'model = "demo"\nmetric = "rmse"\nhigher_is_better = false\n')
    assert tracking.promote_if_better(train({"rmse": 2.0, "r2": 0.5})).promoted
    assert tracking.promote_if_better(train({"rmse": 1.0, "r2": 0.4})).promoted
    assert not tracking.promote_if_better(train({"rmse": 3.0, "r2": 0.9})).promoted
    # Another metric, another alias: explicit arguments win over [tool.dslc].
    result = tracking.promote_if_better(3, metric="r2", higher_is_better=True, alias="best_r2")
    assert result.promoted and str(tracking.champion(alias="best_r2").version) == "3"  # type: ignore[union-attr]
    assert str(tracking.champion().version) == "2"  # type: ignore[union-attr]


def test_promote_if_better_inside_the_run_sees_buffered_metrics(rproj: Path) -> None:
    with tracking.run() as run:
        info = run.log_model(LogisticRegression().fit(X, Y), pip_requirements=["scikit-learn"])
        run.log_metric("score", 0.5)  # still buffered
        version = tracking.register(info)
        assert tracking.promote_if_better(version).promoted


# -- register, promote, champion -------------------------------------------------------


def test_register_outside_a_run(rproj: Path) -> None:
    with tracking.run() as run:
        info = run.log_model(LogisticRegression().fit(X, Y), pip_requirements=["scikit-learn"])
    by_info = tracking.register(info)
    by_uri = tracking.register(info.model_uri, "other", tags={"stage": 1})
    assert (by_info.name, str(by_info.version)) == ("demo", "1")
    assert (by_uri.name, str(by_uri.version), by_uri.tags) == ("other", "1", {"stage": "1"})
    assert by_info.run_id == run.id  # so promote_if_better finds the run's metrics
    with pytest.raises(tracking.TrackingError) as exc:
        tracking.register("model")  # a bare name means nothing outside a run
    assert "ModelInfo" in one_line(exc)


def _printed(capfd: pytest.CaptureFixture[str]) -> list[str]:
    out, err = capfd.readouterr()
    return [line for line in (out + err).splitlines() if line.strip()]


def test_registering_says_one_line_of_dslc(rproj: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """Not MLflow's "Successfully registered model ..." and "Created version ..." lines."""
    with tracking.run() as run:
        info = run.log_model(LogisticRegression().fit(X, Y), pip_requirements=["scikit-learn"])
        capfd.readouterr()
        inside = tracking.register(info)
        lines = _printed(capfd)
    assert len(lines) == 1, lines
    assert lines[0].endswith(f"dslc.tracking: registered model 'demo' version 1 from run {run.id}")
    outside = tracking.register(info.model_uri, "other")
    lines = _printed(capfd)
    assert len(lines) == 1, lines
    assert lines[0].endswith(f"dslc.tracking: registered model 'other' version 1 from run {run.id}")
    assert (str(inside.version), str(outside.version)) == ("1", "1")


def test_log_model_registering_says_one_line(
    rproj: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with tracking.run() as run:
        capfd.readouterr()
        info = run.log_model(
            LogisticRegression().fit(X, Y),
            pip_requirements=["scikit-learn"],
            registered_model_name="demo",
        )
        lines = _printed(capfd)
    assert len(lines) == 1, lines
    assert lines[0].endswith(
        f"logged model 'model' (sklearn, skops) to run {run.id}; registered model 'demo' version 1"
    ), lines
    assert str(info.registered_model_version) == "1"
    # The event stream MLflow prints through is back on after the call.
    from mlflow.utils.logging_utils import MLFLOW_LOGGING_STREAM

    assert MLFLOW_LOGGING_STREAM.enabled


def test_promote_by_hand_moves_the_alias(rproj: Path) -> None:
    train({"score": 0.9})
    train({"score": 0.1})
    assert str(tracking.promote(1).version) == "1"
    moved = tracking.promote("2")
    assert str(moved.version) == "2" and "champion" in moved.aliases
    assert str(tracking.champion().version) == "2"  # type: ignore[union-attr]
    assert tracking.champion(alias="nobody") is None
    assert tracking.champion("no-such-model") is None


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda: tracking.promote(9), "model 'demo' has no version 9; its latest versions: 1"),
        (lambda: tracking.promote("x1"), "must be a whole number from 1, not 'x1'"),
        (lambda: tracking.promote(0), "must be a whole number from 1, not '0'"),
        (lambda: tracking.promote(1, "ghost"), "no registered model 'ghost'"),
        (lambda: tracking.promote(1, alias=" "), "the alias is empty"),
        (
            lambda: tracking.promote_if_better(1, metric="auc"),
            "no metric 'auc' (its metrics: score",
        ),
    ],
)
def test_registry_errors_are_one_line(rproj: Path, call: Any, expected: str) -> None:
    train({"score": 0.5})
    with pytest.raises(tracking.TrackingError) as exc:
        call()
    assert expected in one_line(exc)


@pytest.mark.parametrize(
    ("extra", "call", "expected"),
    [
        ("", lambda: tracking.model_uri(), 'set model = "<name>" under [tool.dslc]'),
        ('model = "demo"\n', lambda: tracking.promote_if_better(1), 'set metric = "<metric name>"'),
        (
            'model = "demo"\nmetric = "score"\nhigher_is_better = "yes"\n',
            lambda: tracking.promote_if_better(1),
            "higher_is_better under [tool.dslc]",
        ),
    ],
)
def test_missing_settings_are_one_line(tproj: Path, extra: str, call: Any, expected: str) -> None:
    settings(tproj, extra)
    with pytest.raises(tracking.TrackingError) as exc:
        call()
    text = one_line(exc)
    assert expected in text and str(tproj / "pyproject.toml") in text


# -- dslc promote, dslc runs -----------------------------------------------------------


def test_cli_promote_says_from_which_version_to_which(
    rproj: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train({"score": 0.5})
    train({"score": 0.6})
    capsys.readouterr()  # MLflow's own "Created version" lines
    assert cli_run(capsys, "promote", "1") == (0, "champion of 'demo': none -> version 1\n", "")
    code, out, _ = cli_run(capsys, "promote", "2")
    assert (code, out) == (0, "champion of 'demo': version 1 -> version 2\n")
    code, out, _ = cli_run(capsys, "promote", "2")
    assert out == "champion of 'demo' is already version 2\n"
    code, out, _ = cli_run(capsys, "promote", "1", "--alias", "staging", "--model", "demo")
    assert out == "staging of 'demo': none -> version 1\n"
    code, out, err = cli_run(capsys, "promote", "7")
    assert (code, out) == (1, "")
    assert err == "dslc: error: model 'demo' has no version 7; its latest versions: 1, 2\n"


def _table(out: str) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a `dslc runs` table (cells are separated by 2+ spaces)."""
    table = [line for line in out.splitlines() if not line.startswith("not shown:")]
    header, *lines = (re.split(r"\s{2,}", line.strip()) for line in table)
    return header, [dict(zip(header, cells, strict=True)) for cells in lines]


def test_cli_runs_table_best_first_fits_80_columns(
    rproj: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    for i, score in enumerate([0.7, 0.9, 0.8]):
        version = train({"score": score, "loss": round(1 - score, 2)}, {"C": i, "seed": 0})
        tracking.promote_if_better(version)
    with tracking.run("no-score", params={"seed": 0}) as run:
        run.log_metric("loss", 0.0)
    capsys.readouterr()
    code, out, err = cli_run(capsys, "runs")
    assert code == 0 and err == ""
    assert all(len(line) <= 80 for line in out.splitlines())
    header, rows = _table(out)
    assert header[:7] == ["ID", "RUN", "START", "STATUS", "VER", "ALIAS", "score"]
    assert all(re.fullmatch(r"[0-9a-f]{8}", r["ID"]) for r in rows)
    assert [r["score"] for r in rows] == ["0.9", "0.8", "0.7", "-"]  # no metric: last
    assert (rows[0]["VER"], rows[0]["ALIAS"]) == ("2", "champion")
    assert (rows[1]["VER"], rows[1]["ALIAS"]) == ("3", "-")
    assert (rows[3]["RUN"], rows[3]["VER"]) == ("no-score", "-")
    assert {r["STATUS"] for r in rows} == {"FINISHED"}
    assert all(re.fullmatch(r"\d\d-\d\d \d\d:\d\d", r["START"]) for r in rows)

    header, rows = _table(cli_run(capsys, "runs", "--sort", "loss", "--limit", "2")[1])
    assert [r["loss"] for r in rows] == ["0.3", "0.2"]  # another metric: highest first
    assert header[4:6] == ["VER", "loss"]  # no alias among these two runs: no ALIAS column
    header, rows = _table(cli_run(capsys, "runs", "--reverse")[1])
    assert [r["score"] for r in rows] == ["0.7", "0.8", "0.9", "-"]

    monkeypatch.setenv("COLUMNS", "200")  # wide: the other metric and the varying param
    header, rows = _table(cli_run(capsys, "runs")[1])
    assert header[6:] == ["score", "loss", "C"]  # seed is 0 everywhere: no column
    assert [r["C"] for r in rows] == ["1", "2", "0", "-"]


def test_cli_runs_names_the_columns_left_out(
    rproj: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    metrics = {f"metric_with_a_long_name_{i}": float(i) for i in range(5)}
    with tracking.run("wide") as run:
        run.log_metrics({"score": 1.0, **metrics})
    lines = cli_run(capsys, "runs")[1].splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert lines[0].split() == [
        "ID",
        "RUN",
        "START",
        "STATUS",
        "score",
        "metric_with_a_long_name_0",
    ]
    assert lines[-1] == "not shown: metric_with_a_long_name_1, metric_with_a_long_name_2, +2 more"


def test_cli_runs_without_runs_or_settings(tproj: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_run(capsys, "runs") == (0, "no runs yet: experiment 'demo-project' is empty\n", "")
    with tracking.run("a"):
        pass
    with tracking.run("b"):
        pass
    header, rows = _table(cli_run(capsys, "runs")[1])  # no declared metric: newest first
    assert header == ["ID", "RUN", "START", "STATUS"] and [r["RUN"] for r in rows] == ["b", "a"]


@pytest.mark.parametrize(
    "name", ["\x1b[31mred\x1b[0m", "two\nlines", "bell\x07", "back\rwards", "bidi\u202eevil"]
)
def test_cli_runs_prints_run_names_and_params_safely(
    tproj: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """A teammate's run name or param, from the shared store, cannot drive the terminal."""
    with tracking.run(name, params={"p": name}) as run:
        run.log_metric("m", 1.0)
    with tracking.run("plain", params={"p": "x"}):
        pass
    capsys.readouterr()
    out = cli_run(capsys, "runs")[1]
    assert all(ch.isprintable() or ch == "\n" for ch in out), repr(out)
    assert len(out.splitlines()) == 3, out  # the header and one line per run
    assert run.id[:8] in out
    with pytest.raises(SystemExit) as exit_:
        cli.main(["runs", "--limit", "0"])
    assert exit_.value.code == 2
    assert "must be a whole number above 0, not '0'" in capsys.readouterr().err


# -- dslc package ----------------------------------------------------------------------


def test_package_writes_the_champion_with_mlflows_dockerfile(
    rproj: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli_run(capsys, "package")
    assert (code, err.strip()) == (
        1,
        "dslc: error: no champion model yet (models:/demo@champion): run `make train` first",
    )
    assert not (rproj / "dist").exists()
    tracking.promote_if_better(train({"score": 0.5}).version)
    (rproj / "dist" / "model").mkdir(parents=True)
    (rproj / "dist" / "model" / "stale.txt").write_text("from an earlier package")
    code, _, err = cli_run(capsys, "package")
    assert code == 0, err
    folder = rproj / "dist" / "model"
    said = err.strip().splitlines()[-1]
    assert said == f"Packaged demo version 1 in {folder}: docker build -t demo {folder}"
    assert "COPY model_dir /opt/ml/model" in (folder / "Dockerfile").read_text()
    meta = (folder / "model_dir" / "registered_model_meta").read_text()
    assert "model_name: demo" in meta and "model_version: '1'" in meta.replace('"', "'")
    assert not (folder / "stale.txt").exists()  # the folder is replaced whole


def test_package_of_a_model_mlflow_cannot_read_leaves_no_folder(
    rproj: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    version = train({"score": 0.5})
    tracking.promote(version.version)
    mlflow.MlflowClient().delete_run(version.run_id)  # its artifacts stay, the run goes
    for artifacts in (rproj / "mlartifacts").rglob("MLmodel"):
        artifacts.write_text("not: [a model")  # a damaged model file
    capsys.readouterr()
    code, _, err = cli_run(capsys, "package", "--output", str(rproj / "out"))
    assert code == 1 and err.startswith("dslc: error: mlflow models generate-dockerfile: ")
    assert err.count("\n") == 1 and "Error" in err, err
    assert not (rproj / "out").exists()
