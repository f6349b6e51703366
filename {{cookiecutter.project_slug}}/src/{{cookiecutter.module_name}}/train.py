"""Train, evaluate and register the model; every run is tracked in MLflow."""

from __future__ import annotations

import argparse

import pandas as pd
from dslc import config, data, get_logger, tracking
from tqdm.auto import tqdm

from {{ cookiecutter.module_name }} import evaluate
from {{ cookiecutter.module_name }}.features import SEED, TARGET, TEST_DATASET, TRAIN_DATASET

MODEL_NAME = "{{ cookiecutter.module_name }}"
PARAMS = {
    "model": {"C": 1.0, "max_iter": 500},
    "cv_folds": 5,
    "seed": SEED,
}

log = get_logger(__name__)


def make_model(params: dict):
    """A scaled logistic regression: a strong, explainable baseline."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        StandardScaler(),
        LogisticRegression(random_state=params["seed"], **params["model"]),
    )


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
    params = params or PARAMS
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
        figure_path = config.paths().figures / "confusion_matrix.png"
        figure_path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(figure_path, dpi=120)
        run.log_figure(figure, "figures/confusion_matrix.png")

        info = run.log_model(model, name="model", input_example=X_test.head(5))
        version = run.register_model(info.model_uri, MODEL_NAME)
        log.info(
            "Run %s: test accuracy %.3f; registered %s version %s",
            run.id,
            test_scores["accuracy"],
            MODEL_NAME,
            version.version,
        )
        return run.id


def parse_args(argv: list[str] | None = None) -> dict:
    """Command-line overrides of PARAMS (the MLproject's `train` parameters use them)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--C", type=float, default=PARAMS["model"]["C"])
    parser.add_argument("--max-iter", type=int, default=PARAMS["model"]["max_iter"])
    parser.add_argument("--cv-folds", type=int, default=PARAMS["cv_folds"])
    args = parser.parse_args(argv)
    if args.cv_folds < 2:
        parser.error(f"--cv-folds must be at least 2, got {args.cv_folds}")
    return {
        "model": {"C": args.C, "max_iter": args.max_iter},
        "cv_folds": args.cv_folds,
        "seed": SEED,
    }


if __name__ == "__main__":
    main(parse_args())
