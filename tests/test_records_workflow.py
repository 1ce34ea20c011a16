"""The run records (workflow/rules/records.smk) on the tiny pipeline, run by the real snakemake:
one row per experiment with the values of its files, what reruns them, and MLflow logging by the
workflow's own rule when tracking.mlflow_uri is set."""

from __future__ import annotations

import csv
import importlib.util
import json

from pathlib import Path

import pytest
from snakemake.utils import validate

from conftest import REPO
from ferxai.assess.files import read_table
from ferxai.records import config_hash, resolved_config
from tinyflow import TINY, current_config, make_workdir, planned_rules, snakemake, write_config

pytestmark = pytest.mark.slow
RECORD_RULES = {"run_record", "runs_table"}


def tiny_records_config() -> dict:
    cfg = json.loads(json.dumps(TINY))
    # a second experiment (other training settings) that is trained, explained and scored too
    cfg["experiments"]["tiny_cnn_lr"] = {"dataset": "tiny", "model": "cnn", "train": {"lr": 0.01}}
    cfg["explain"]["methods"]["broken_cam"] = {"method": "gradcam", "target_layer": "features.no_such_block"}
    cfg["assess"] = {"metrics": {"sparseness": {}}, "randomisation": {"images": 0}}
    return cfg


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    workdir = make_workdir(tmp_path_factory.mktemp("records"), tiny_records_config())
    snakemake(workdir)
    return workdir


def test_runs_csv_has_one_row_per_experiment_with_its_values(built):
    runs = read_table(built / "results" / "runs.csv")
    assert [r["experiment"] for r in runs] == ["tiny_cnn", "tiny_cnn_lr"]
    # the config as the workflow holds it: the schema's defaults filled in (snakemake's validate)
    cfg = current_config(built)
    validate(cfg, str(Path(REPO) / "config" / "schema.yaml"))
    for row in runs:
        e = row["experiment"]
        summary = json.loads((built / "results" / e / "eval" / "test_summary.json").read_text())
        assert float(row["test/accuracy"]) == summary["accuracy"]
        assert float(row["test/macro_f1"]) == summary["macro_f1"]
        assert (row["dataset"], row["model"], row["arch"]) == ("tiny", "cnn", "fer_cnn")
        assert row["config_hash"] == config_hash(resolved_config(cfg, e))
        assert row["git_commit"] == "unknown" and row["git_dirty"] == ""  # the copy is no git checkout
        # broken_cam fails on this model: said, not dropped
        assert row["status"] == "methods failed" and row["failed_methods"] == "broken_cam"
        assert row["missing"] == ""
        for name in ("model", "test_summary", "predictions", "explain_store", "scores", "scores_store"):
            assert (built / row[f"path/{name}"]).exists(), name
        assert row["path/model"] == f"results/{e}/model/best.pt"
        record = json.loads((built / row["path/record"]).read_text())
        assert record["config"]["train"].get("lr") == {"tiny_cnn_lr": 0.01}.get(e)  # its own overrides merged
    assert runs[0]["config_hash"] != runs[1]["config_hash"]

    scores = read_table(built / "results" / "runs_scores.csv")
    for e in ("tiny_cnn", "tiny_cnn_lr"):
        own = read_table(built / "results" / e / "assess" / "scores.csv")
        mine = [{k: v for k, v in r.items() if k not in ("experiment", "config_hash")}
                for r in scores if r["experiment"] == e]
        assert mine == own and len(own) > 0
    failed = [r for r in scores if r["method"] == "broken_cam"]
    assert failed and all(r["status"] == "failed" and "no_such_block" in r["reason"] for r in failed)


def test_a_changed_score_reruns_the_records(built):
    scores_csv = built / "results" / "tiny_cnn_lr" / "assess" / "scores.csv"
    table = read_table(scores_csv)
    original = scores_csv.read_text()
    row = next(r for r in table if r["method"] == "saliency" and r["metric"] == "sparseness")
    changed = original.replace(f"saliency,clean,sparseness,complexity,{row['mean']},",
                               "saliency,clean,sparseness,complexity,0.123,", 1)
    assert changed != original
    scores_csv.write_text(changed)
    try:
        assert planned_rules(built) == RECORD_RULES
        snakemake(built, "results/runs.csv")
        scores = read_table(built / "results" / "runs_scores.csv")
        mine = [r for r in scores if (r["experiment"], r["method"], r["metric"]) == ("tiny_cnn_lr", "saliency", "sparseness")]
        assert [r["mean"] for r in mine] == ["0.123"]
        assert planned_rules(built) == set()
    finally:
        scores_csv.write_text(original)
    snakemake(built, "results/runs.csv")


def test_a_config_change_reruns_the_records(built):
    original = current_config(built)
    cfg = current_config(built)
    cfg["assess"]["intervals"] = {"resamples": 300}
    write_config(built, cfg)
    try:
        # the scorecards change with it, and the records name the new config
        assert planned_rules(built) == {"assess_scores"} | RECORD_RULES
    finally:
        write_config(built, original)
    assert planned_rules(built) == set()


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is None,
                    reason="mlflow is not installed (pip install -e '.[tracking]')")
def test_tracking_uri_logs_every_record_to_mlflow(built, tmp_path):
    """With tracking.mlflow_uri (here a SQLite store in tmp; the server is tested in
    test_tracking.py) the workflow's track_mlflow rule logs one run per experiment."""
    original = current_config(built)
    cfg = current_config(built)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg["tracking"] = {"mlflow_uri": uri, "experiment_name": "tiny"}
    write_config(built, cfg)
    try:
        assert planned_rules(built) == {"track_mlflow"}
        snakemake(built)
        receipt = json.loads((built / "results" / "runs_mlflow.json").read_text())
        assert set(receipt["runs"]) == {"tiny_cnn", "tiny_cnn_lr"} and receipt["uri"] == uri
        assert planned_rules(built) == set()
        import os

        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=uri)
        runs = client.search_runs([receipt["experiment_id"]])
        runs_csv = {r["experiment"]: r for r in read_table(built / "results" / "runs.csv")}
        assert {r.data.tags["ferxai.experiment"] for r in runs} == set(runs_csv)
        for run in runs:
            row = runs_csv[run.data.tags["ferxai.experiment"]]
            assert run.data.tags["ferxai.config_hash"] == row["config_hash"]
            assert run.data.metrics["test/accuracy"] == float(row["test/accuracy"])
            assert run.data.tags["path.explain_store"] == row["path/explain_store"]
    finally:
        write_config(built, original)
