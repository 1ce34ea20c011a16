"""Logging the run records (ferxai.records) to an MLflow tracking server: optional, the
``tracking`` extra (``pip install -e '.[tracking]'``), not in ``make run``'s environment.

One MLflow run per experiment, in the MLflow experiment ``tracking.experiment_name``:

- run name: the experiment; tags ``ferxai.experiment``, ``ferxai.config_hash``,
  ``ferxai.git_commit``, ``ferxai.git_dirty``, ``ferxai.status``, ``ferxai.scores_status``,
  ``ferxai.failed_methods``, ``ferxai.dataset``, ``ferxai.model``, ``ferxai.arch``,
  ``ferxai.record_hash`` (of the record's content), and ``path.<output>`` for every output path of
  the record. Paths, not uploads: models, predictions and the zarr store stay where the workflow
  (and DVC) keep them;
- params: the resolved configuration (``records.resolved_config``) flattened to dotted keys
  (``train.lr``, ``explain.methods.ig_blur.params.baseline``), values as JSON;
- metrics: ``test/<metric>`` (test_summary.json) and ``score/<condition>/<method>/<metric>``, the
  mean of every score that has one (failed methods have none; their reasons are in the tags and
  the record);
- artifact: the record itself, ``record/<experiment>.json`` (intervals, ranks, reasons, paths).

Logging again does not duplicate runs: the run of an experiment is found by its
``ferxai.experiment`` and ``ferxai.config_hash`` tags. Same record (``ferxai.record_hash``):
nothing is logged. Same configuration but a changed record (new code, a new commit): the run's
tags, metrics (MLflow keeps each metric's history; the latest value is shown) and artifact are
updated. Another configuration hash: a new run.

    python -m ferxai.tracking results/runs.csv --uri http://127.0.0.1:5000 [--experiment-name ferxai]

MLflow's usage telemetry (which also writes an installation id under ~/.config) is turned off
unless MLFLOW_DISABLE_TELEMETRY is set otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from ferxai.records import read_record
from ferxai.settings import TrackingSettings

log = logging.getLogger(__name__)

# MLflow's limits per log_batch request
_MAX_PARAMS, _MAX_METRICS, _MAX_TAGS = 100, 1000, 100
_TAG = "ferxai."

__all__ = ["flatten", "log_records", "log_records_to", "main", "record_hash", "record_metrics", "record_tags"]


def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """Nested mappings as {dotted.key: JSON of the leaf}; lists, empty mappings and scalars are
    leaves."""
    if isinstance(value, Mapping) and value:
        out: dict[str, str] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value if isinstance(value, str) else json.dumps(value, sort_keys=True)}


def record_hash(record: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:16]


def record_metrics(record: Mapping[str, Any]) -> dict[str, float]:
    """test/<metric> and score/<condition>/<method>/<metric> (the means that exist)."""
    metrics = {f"test/{k}": float(v) for k, v in (record.get("test") or {}).items()}
    for row in record.get("scores") or []:
        if row.get("mean") not in (None, ""):
            metrics[f"score/{row['condition']}/{row['method']}/{row['metric']}"] = float(row["mean"])
    return metrics


def record_tags(record: Mapping[str, Any]) -> dict[str, str]:
    tags = {f"{_TAG}{k}": "" if record.get(k) is None else str(record.get(k))
            for k in ("experiment", "config_hash", "git_commit", "git_dirty", "status", "scores_status", "dataset",
                      "model", "arch")}
    tags[f"{_TAG}failed_methods"] = ";".join(record.get("failed_methods") or {})
    tags[f"{_TAG}record_hash"] = record_hash(record)
    tags.update({f"path.{k}": v for k, v in (record.get("paths") or {}).items() if v})
    tags["mlflow.runName"] = record["experiment"]
    return tags


def _chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)] or [[]]


def _client(uri: str):
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise ImportError("MLflow logging (tracking.mlflow_uri) needs mlflow: pip install -e '.[tracking]'") from None
    return MlflowClient(tracking_uri=uri)


def _experiment_id(client: Any, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            raise ValueError(f"tracking.experiment_name: MLflow experiment {name!r} is deleted; restore it "
                             "(mlflow experiments restore) or name another")
        return found.experiment_id
    return client.create_experiment(name)


def _find_run(client: Any, experiment_id: str, record: Mapping[str, Any]) -> Any:
    query = (f"tags.`{_TAG}experiment` = '{record['experiment']}' and "
             f"tags.`{_TAG}config_hash` = '{record['config_hash']}'")
    runs = client.search_runs([experiment_id], filter_string=query, max_results=2, order_by=["attributes.start_time"])
    return runs[0] if runs else None


def log_record(client: Any, experiment_id: str, record: Mapping[str, Any], record_path: str | os.PathLike[str]
               ) -> tuple[str, str]:
    """Log one record; returns (run id, what was done: "created" | "updated" | "unchanged")."""
    from mlflow.entities import Metric, Param, RunTag

    tags = record_tags(record)
    run = _find_run(client, experiment_id, record)
    if run is not None and run.data.tags.get(f"{_TAG}record_hash") == tags[f"{_TAG}record_hash"]:
        return run.info.run_id, "unchanged"
    action = "updated" if run is not None else "created"
    if run is None:
        run = client.create_run(experiment_id, run_name=record["experiment"])
    run_id = run.info.run_id
    import time

    now = int(time.time() * 1000)
    params = [Param(k, v) for k, v in sorted(flatten(record["config"]).items())]
    if action == "updated":
        params = []  # the same config hash: the same params, and MLflow refuses to change one
    metrics = [Metric(k, v, now, 0) for k, v in sorted(record_metrics(record).items())]
    for chunk in _chunks(params, _MAX_PARAMS):
        client.log_batch(run_id, params=chunk)
    for chunk in _chunks(metrics, _MAX_METRICS):
        client.log_batch(run_id, metrics=chunk)
    for chunk in _chunks([RunTag(k, v) for k, v in sorted(tags.items())], _MAX_TAGS):
        client.log_batch(run_id, tags=chunk)
    client.log_artifact(run_id, str(record_path), artifact_path="record")
    client.set_terminated(run_id, "FINISHED")
    return run_id, action


def log_records(record_paths: Sequence[str | os.PathLike[str]], settings: Mapping[str, Any] | TrackingSettings
                ) -> dict[str, Any]:
    """Log every record file to `settings.mlflow_uri`; returns {"uri", "experiment_name",
    "experiment_id", "runs": {experiment: {"run_id", "action"}}}."""
    settings = TrackingSettings.from_dict(settings)
    if not settings.mlflow_uri:
        raise ValueError("tracking.mlflow_uri: not set; nothing to log to")
    client = _client(settings.mlflow_uri)
    experiment_id = _experiment_id(client, settings.experiment_name)
    runs = {}
    for path in record_paths:
        record = read_record(path)
        run_id, action = log_record(client, experiment_id, record, path)
        log.info("%s: MLflow run %s (%s)", record["experiment"], run_id, action)
        runs[record["experiment"]] = {"run_id": run_id, "action": action}
    return {"uri": settings.mlflow_uri, "experiment_name": settings.experiment_name,
            "experiment_id": experiment_id, "runs": runs}


def log_records_to(record_paths: Sequence[str | os.PathLike[str]], settings: Mapping[str, Any] | TrackingSettings,
                   receipt: str | os.PathLike[str]) -> dict[str, Any]:
    """`log_records`, and its result (the MLflow run of every experiment) written to `receipt`."""
    from ferxai.atomic import write_text_atomic

    result = log_records(record_paths, settings)
    write_text_atomic(receipt, json.dumps(result, indent=1, sort_keys=True) + "\n")
    return result


def records_of_table(runs_csv: str | os.PathLike[str]) -> list[str]:
    """The record files a runs.csv names (its path/record column), relative to the folder above
    results/ (the workflow's working directory) when they are relative."""
    runs_csv = Path(runs_csv)
    base = runs_csv.resolve().parent.parent
    with runs_csv.open(newline="", encoding="utf-8") as handle:
        paths = [row["path/record"] for row in csv.DictReader(handle)]
    return [str(p if Path(p).is_absolute() else base / p) for p in paths]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ferxai.tracking",
                                     description="Log the run records of a runs.csv to MLflow (one run per experiment)")
    parser.add_argument("runs_csv", help="results/runs.csv")
    parser.add_argument("--uri", required=True, help="MLflow tracking URI, e.g. http://127.0.0.1:5000")
    parser.add_argument("--experiment-name", default=TrackingSettings.experiment_name)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        settings = TrackingSettings(mlflow_uri=args.uri, experiment_name=args.experiment_name)
        # MLflow prints a "View run ... at: <url>" line per run; stdout is for the JSON result
        with contextlib.redirect_stdout(sys.stderr):
            result = log_records(records_of_table(args.runs_csv), settings)
    except (ValueError, ImportError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
