"""Train, evaluate and register the model; every run is tracked in MLflow.

The model is the whole inference path: the feature step from ``features``, then the
estimator from ``make_estimator``, so it takes raw rows. To try another estimator, change
``make_estimator`` and its ``PARAMS["model"]``; nothing else needs to change.

Each run registers a new version of the model. The version becomes the champion, the one
``predict`` and ``serve`` use, only if it beats the current champion on the metric that
``[tool.dslc]`` in pyproject.toml names; ``make promote VERSION=n`` overrides by hand.
{%- if cookiecutter.data_versioning == "dvc" %}

The parameters come from the ``train`` section of params.yaml (DVC re-runs training when
it changes); command-line options override them for one run. Each run writes
``models/train.json``: the run, the version it registered and the champion after it.
{%- endif %}
"""

from __future__ import annotations

import argparse
{%- if cookiecutter.data_versioning == "dvc" %}
import json
{%- endif %}
from pathlib import Path

import pandas as pd
from dslc import {% if cookiecutter.data_versioning == "dvc" %}config, {% endif %}data, get_logger, tracking
from tqdm.auto import tqdm

from {{ cookiecutter.module_name }} import evaluate, features
from {{ cookiecutter.module_name }}.features import SEED, TARGET, TEST_DATASET, TRAIN_DATASET

PARAMS = {
    # The estimator's arguments; each is also a command-line option (--C 0.5, --max-iter 300).
    "model": {"C": 1.0, "max_iter": 500},
    "cv_folds": 5,
    "seed": SEED,
}

log = get_logger(__name__)
{%- if cookiecutter.data_versioning == "dvc" %}


def load_params() -> dict:
    """PARAMS with the ``train`` section of params.yaml over them."""
    import yaml

    file = config.project_root() / "params.yaml"
    section = (yaml.safe_load(file.read_text(encoding="utf-8")) or {}).get("train") or {}
    return {
        "model": {**PARAMS["model"], **section.get("model", {})},
        "cv_folds": int(section.get("cv_folds", PARAMS["cv_folds"])),
        "seed": SEED,
    }


def write_summary(run_id: str, version: str, champion: str | None, scores: dict) -> None:
    """models/train.json: what this run made, for DVC (the stage's output) and for readers."""
    summary = {"run_id": run_id, "registered_version": version, "champion": champion}
    file = config.project_root() / "models" / "train.json"
    file.parent.mkdir(exist_ok=True)
    file.write_text(json.dumps({**summary, **scores}, indent=2) + "\n", encoding="utf-8")
{%- endif %}


def make_estimator(params: dict):
    """A scaled logistic regression: a strong, explainable baseline.

    Any scikit-learn classifier fits here, for example
    ``RandomForestClassifier(random_state=params["seed"], **params["model"])`` with
    ``PARAMS["model"] = {"n_estimators": 200}``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        StandardScaler(),
        LogisticRegression(random_state=params["seed"], **params["model"]),
    )


def make_model(params: dict):
    """The model as it is logged and served: raw rows -> features -> estimator."""
    from sklearn.pipeline import Pipeline

    return Pipeline([("features", features.transformer()), ("estimator", make_estimator(params))])


def model_code() -> str:
    """This package's folder: the code the model imports when it loads (``features``).

    MLflow copies it into the model (``code_paths``, without ``__pycache__``); the model's
    requirements then come from what loading it imports, which is why ``features`` imports
    dslc only inside its functions.
    """
    return str(Path(features.__file__).parent)


def cross_validate(params: dict, X: pd.DataFrame, y: pd.Series, run) -> float:
    """Score each fold (logged as one metric step per fold) and return the mean."""
    from sklearn.model_selection import StratifiedKFold

    folds = StratifiedKFold(n_splits=params["cv_folds"], shuffle=True, random_state=params["seed"])
    fold_scores = []
    for step, (fit_idx, val_idx) in enumerate(
        tqdm(list(folds.split(X, y)), desc="cross-validation", unit="fold")
    ):
        model = make_model(params).fit(X.iloc[fit_idx], y.iloc[fit_idx])
        fold = evaluate.scores(y.iloc[val_idx], model.predict(X.iloc[val_idx]))
        run.log_metrics({f"cv_{name}": value for name, value in fold.items()}, step=step)
        fold_scores.append(fold["accuracy"])
    return sum(fold_scores) / len(fold_scores)


def main(params: dict | None = None) -> str:
    """Run the training pipeline; returns the MLflow run id."""
    params = params or {% if cookiecutter.data_versioning == "dvc" %}load_params(){% else %}PARAMS{% endif %}
    with tracking.run(name="train", params=params) as run:
        # Loaded inside the run, so it records which data (by fingerprint) it used.
        train = data.load(TRAIN_DATASET)
        test = data.load(TEST_DATASET)
        X_train, y_train = train.drop(columns=[TARGET]), train[TARGET]
        X_test, y_test = test.drop(columns=[TARGET]), test[TARGET]

        run.log_metrics({"cv_accuracy_mean": cross_validate(params, X_train, y_train, run)})
        model = make_model(params).fit(X_train, y_train)
        predictions = model.predict(X_test)
        test_scores = evaluate.scores(y_test, predictions)
        run.log_metrics({f"test_{name}": value for name, value in test_scores.items()})

        figure = evaluate.confusion_figure(y_test, predictions)
        run.log_figure(figure, "figures/confusion_matrix.png", save_to=True)
        # The example rows give the model its signature: the raw columns and their types.
        # The model carries this package (its feature step), so it loads where the project
        # is not installed: a server or a container built from the model alone.
        info = run.log_model(
            model, name="model", input_example=X_test.head(5), code_paths=[model_code()]
        )

    # Registered once the run has ended, so its metrics are there to compare.
    version = tracking.register(info)
    outcome = tracking.promote_if_better(version.version)
    log.info(
        "Run %s: test accuracy %.3f; registered version %s; %s",
        run.id,
        test_scores["accuracy"],
        version.version,
        outcome.reason,
    )
{%- if cookiecutter.data_versioning == "dvc" %}
    champion = tracking.champion()
    write_summary(
        run.id,
        str(version.version),
        None if champion is None else str(champion.version),
        {f"test_{name}": value for name, value in test_scores.items()},
    )
{%- endif %}
    return run.id


def parse_args(argv: list[str] | None = None) -> dict:
    """Command-line overrides of PARAMS (the MLproject's `train` parameters use them)."""
    parser = argparse.ArgumentParser(description=__doc__)
    defaults = {% if cookiecutter.data_versioning == "dvc" %}load_params(){% else %}PARAMS{% endif %}
    for name, default in defaults["model"].items():
        # One option per estimator argument, typed like its default: --max-iter 300.
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=default)
    parser.add_argument("--cv-folds", type=int, default=defaults["cv_folds"])
    args = vars(parser.parse_args(argv))
    if args["cv_folds"] < 2:
        parser.error(f"--cv-folds must be at least 2, got {args['cv_folds']}")
    return {
        "model": {name: args[name] for name in PARAMS["model"]},
        "cv_folds": args["cv_folds"],
        "seed": SEED,
    }


if __name__ == "__main__":
    main(parse_args())
