"""Train, evaluate and register the model (raw rows -> features -> estimator) in MLflow.
params.yaml's ``train`` section is the one source of parameters; a new version becomes the
champion only if it beats the current one on pyproject.toml's ``[tool.dslc]`` metric."""

import json
from pathlib import Path

import pandas as pd
import yaml
from dslc import config, data, get_logger, tracking
from sklearn.pipeline import Pipeline
from tqdm.auto import tqdm

from {{ cookiecutter.module_name }} import evaluate, features
from {{ cookiecutter.module_name }}.dataset import TARGET, TEST_DATASET, TRAIN_DATASET
from {{ cookiecutter.module_name }}.estimators import make_estimator

log = get_logger(__name__)


def load_params() -> dict:
    """The ``train`` section of params.yaml."""
    return yaml.safe_load((config.project_root() / "params.yaml").read_text())["train"]


def make_model(params: dict) -> Pipeline:
    """The model as it is logged and served: raw rows -> features -> the chosen estimator."""
    name = params["estimator"]
    estimator = make_estimator(name, params["estimators"].get(name) or {}, params["seed"])
    return Pipeline([("features", features.transformer()), ("estimator", estimator)])


def cross_validate(params: dict, X: pd.DataFrame, y: pd.Series) -> dict[str, float]:
    """``cv_<score>_mean`` and ``cv_<score>_std`` over ``cv_folds`` folds of (X, y)."""
    splits = list(evaluate.folds(params["cv_folds"], params["seed"]).split(X, y))
    rows = []
    # disable=None: a progress bar on a terminal, none in a log file or CI.
    for fit, held in tqdm(splits, desc="cross-validation", unit="fold", disable=None):
        model = make_model(params).fit(X.iloc[fit], y.iloc[fit])
        rows.append(evaluate.scores(y.iloc[held], model.predict(X.iloc[held])))
    per_fold = pd.DataFrame(rows)
    stats = {"mean": per_fold.mean(), "std": per_fold.std(ddof=0)}
    return {f"cv_{name}_{s}": float(v) for s, col in stats.items() for name, v in col.items()}


def main(params: dict | None = None) -> str:
    """Train and register; returns the run id. Without ``params``, the pipeline's stage
    (writes models/train.json and the figure); with a search's best trial, no file."""
    if stage := params is None:
        data.require_stage("train")  # with versioned data, only as the pipeline's stage
        params = load_params()
    name, chosen = params["estimator"], params["estimators"].get(params["estimator"]) or {}
    logged = {"estimator": name, **chosen, "cv_folds": params["cv_folds"], "seed": params["seed"]}
    with tracking.run(name="train", params=logged) as run:
        # Loaded inside the run, so it records which data (by fingerprint) it used.
        train, test = data.load(TRAIN_DATASET), data.load(TEST_DATASET)
        X_train, y_train = train.drop(columns=[TARGET]), train[TARGET]
        X_test, y_test = test.drop(columns=[TARGET]), test[TARGET]
        run.log_metrics(cross_validate(params, X_train, y_train))
        model = make_model(params).fit(X_train, y_train)
        predictions = model.predict(X_test)
        scores = {f"test_{key}": val for key, val in evaluate.scores(y_test, predictions).items()}
        run.log_metrics(scores)
        run.log_figure(evaluate.figure(y_test, predictions), evaluate.FIGURE, save_to=stage)
        # Example rows give the model its signature; it carries this package (its features).
        code = str(Path(features.__file__).parent)
        info = run.log_model(model, name="model", input_example=X_test.head(5), code_paths=[code])
    version = tracking.register(info)  # after the run, so its metrics are there to compare
    outcome = tracking.promote_if_better(version.version)
    shown = ", ".join(f"{key} {value:.3f}" for key, value in scores.items())
    log.info("Run %s: %s; registered version %s; %s", run.id, shown, version.version, outcome)
    if stage:
        summary = {"run_id": run.id, "registered_version": str(version.version)}
        summary |= {"champion": str(tracking.champion().version), **scores}
        (config.project_root() / "models" / "train.json").write_text(json.dumps(summary, indent=2))
    return run.id


if __name__ == "__main__":
    main()
