"""Print a JSON summary of a project's MLflow runs; run with the project's own Python.

Used by the template's tests to check what a baked project's pipeline recorded.
"""

import json

import mlflow
from dslc import config, tracking

client = mlflow.MlflowClient(config.tracking_uri())
experiment = client.get_experiment_by_name(config.project_name())
runs = client.search_runs([experiment.experiment_id]) if experiment else []
summary = []
for run in runs:
    artifacts = []
    pending = [None]
    while pending:
        for item in client.list_artifacts(run.info.run_id, pending.pop()):
            (pending if item.is_dir else artifacts).append(item.path)
    summary.append(
        {
            "id": run.info.run_id,
            "name": run.info.run_name,
            "status": run.info.status,
            "params": run.data.params,
            "metrics": run.data.metrics,
            "tags": run.data.tags,
            "artifacts": artifacts,
            "inputs": [
                {"name": d.dataset.name, "digest": d.dataset.digest}
                for d in (run.inputs.dataset_inputs if run.inputs else [])
            ],
            "artifact_uri": run.info.artifact_uri,
        }
    )
models = [
    {"name": m.name, "version": str(m.version), "run_id": m.run_id}
    for m in client.search_model_versions()
]
champion = tracking.champion() if models else None
print(
    json.dumps(
        {
            "uri": config.tracking_uri(),
            "runs": summary,
            "models": models,
            "champion": str(champion.version) if champion else None,
        }
    )
)
