"""Run records (ferxai.records) on hand-made results trees in the formats the stages write: a
test_summary.json as evaluation writes it (ferxai.metrics.classification_summary) and scores.csv
through the scorecard's own writer and columns (ferxai.assess.collect)."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ferxai.assess.collect import SCORE_COLUMNS
from ferxai.assess.files import write_table
from ferxai.metrics import classification_summary
from ferxai.records import (PATHS, RUN_COLUMNS, build_record, config_hash, experiment_paths, git_state, read_record,
                            record_experiment, resolved_config, write_runs)
from tinyflow import TINY

CLASSES = ["angry", "happy", "sad"]


def config(**changes) -> dict:
    cfg = json.loads(json.dumps(TINY))
    cfg["experiments"]["tiny_res"] = {"dataset": "tiny", "model": "cnn", "train": {"lr": 0.01}}
    cfg["assess"] = {"metrics": {"pointing_game": {}, "sparseness": {}}}
    for key, value in changes.items():
        cfg[key] = value
    return cfg


def write_summary(root: Path, experiment: str, labels, preds) -> dict:
    summary = {**classification_summary(np.array(labels), np.array(preds), CLASSES),
               "checkpoint": f"results/{experiment}/model/best.pt", "epoch": 2, "arch": "fer_cnn",
               "config_hash": "abc"}
    path = root / "results" / experiment / "eval" / "test_summary.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2) + "\n")  # as ferxai.evaluate writes it
    return summary


def score_row(method, metric, mean, status="ok", reason=""):
    failed = status == "failed"
    return (method, "clean", metric, "localisation", float("nan") if failed else mean,
            float("nan") if failed else mean - 0.1, float("nan") if failed else mean + 0.1, 0 if failed else 5,
            "higher", "" if failed else 1, method == "random", status, reason)


def write_scores(root: Path, experiment: str, rows) -> Path:
    path = root / "results" / experiment / "assess" / "scores.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_table(path, SCORE_COLUMNS, rows)
    return path


def make_outputs(root: Path, experiment: str, scored: bool = True) -> dict[str, str]:
    """The model, predictions and store files a record names (their content is not read)."""
    e = f"results/{experiment}"
    inputs = {"model": f"{e}/model/best.pt", "test_summary": f"{e}/eval/test_summary.json",
              "predictions": f"{e}/eval/predictions.csv", "explain_store": f"{e}/explain/store.zarr"}
    for name in ("model", "predictions"):
        (root / inputs[name]).parent.mkdir(parents=True, exist_ok=True)
        (root / inputs[name]).write_text("x")
    (root / inputs["explain_store"]).mkdir(parents=True, exist_ok=True)
    if scored:
        inputs["scores"] = f"{e}/assess/scores.csv"
    return inputs


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_scored_experiment_is_recorded_with_metrics_scores_and_paths(tmp_path):
    cfg = config()
    summary = write_summary(tmp_path, "tiny_cnn", [0, 1, 2, 2], [0, 1, 2, 1])
    write_scores(tmp_path, "tiny_cnn", [score_row("saliency", "pointing_game", 0.75),
                                        score_row("random", "pointing_game", 0.25)])
    resolved = resolved_config(cfg, "tiny_cnn")
    paths = experiment_paths("tiny_cnn", make_outputs(tmp_path, "tiny_cnn"))
    record = build_record("tiny_cnn", resolved, paths, root=tmp_path)

    assert record["status"] == "ok" and record["missing"] == [] and record["scores_status"] == "ok"
    assert (record["dataset"], record["model"], record["arch"]) == ("tiny", "cnn", "fer_cnn")
    assert record["config_hash"] == config_hash(resolved) and len(record["config_hash"]) == 16
    assert record["test"]["accuracy"] == summary["accuracy"] == 0.75
    assert record["test"]["macro_f1"] == summary["macro_f1"] and record["test"]["num_samples"] == 4
    assert "per_class" not in record["test"] and "config_hash" not in record["test"]
    assert [(r["method"], float(r["mean"])) for r in record["scores"]] == [("saliency", 0.75), ("random", 0.25)]
    assert record["paths"]["scores"] == "results/tiny_cnn/assess/scores.csv"
    assert record["paths"]["assess_dir"] == "results/tiny_cnn/assess"
    assert record["paths"]["record"] == "results/runs/tiny_cnn.json"
    assert set(record["paths"]) == set(PATHS)


def test_a_failed_method_and_missing_scores_are_said_not_dropped(tmp_path):
    cfg = config()
    write_summary(tmp_path, "tiny_cnn", [0, 1, 2], [0, 1, 2])
    write_scores(tmp_path, "tiny_cnn", [score_row("saliency", "pointing_game", 0.5),
                                        score_row("broken_cam", "pointing_game", 0, "failed", "no layer features.x"),
                                        score_row("broken_cam", "sparseness", 0, "failed", "no layer features.x")])
    write_summary(tmp_path, "tiny_res", [0, 1, 2], [0, 0, 2])  # scored, but its scores.csv is not there
    records = []
    for experiment in ("tiny_cnn", "tiny_res"):
        paths = experiment_paths(experiment, make_outputs(tmp_path, experiment))
        records.append(build_record(experiment, resolved_config(cfg, experiment), paths, root=tmp_path))
    failed, missing = records
    assert failed["status"] == "methods failed" and failed["scores_status"] == "methods failed"
    assert failed["failed_methods"] == {"broken_cam": "no layer features.x"}
    assert missing["status"] == "incomplete" and missing["missing"] == ["scores"]
    assert missing["scores_status"] == "missing" and missing["scores"] == []

    write_runs(records, tmp_path / "runs.csv", tmp_path / "runs_scores.csv")
    table = rows(tmp_path / "runs.csv")
    assert [r["experiment"] for r in table] == ["tiny_cnn", "tiny_res"]
    assert table[0]["failed_methods"] == "broken_cam" and table[0]["scores"] == "3"
    assert table[1]["status"] == "incomplete" and table[1]["missing"] == "scores" and table[1]["scores"] == "0"
    assert float(table[1]["test/accuracy"]) == pytest.approx(2 / 3)
    # different training settings, different hash
    assert table[0]["config_hash"] != table[1]["config_hash"]
    scores = rows(tmp_path / "runs_scores.csv")
    assert list(scores[0]) == ["experiment", "config_hash", *SCORE_COLUMNS]
    assert {r["experiment"] for r in scores} == {"tiny_cnn"} and len(scores) == 3
    broken = [r for r in scores if r["method"] == "broken_cam"]
    assert all(r["status"] == "failed" and r["reason"] == "no layer features.x" and r["mean"] == "" for r in broken)
    assert scores[0]["config_hash"] == table[0]["config_hash"]


def test_runs_csv_columns_are_the_union_of_what_experiments_have(tmp_path):
    """An experiment on images without classes (no accuracy, predicted counts) and one that is not
    scored sit in one table: their own test columns, empty cells elsewhere."""
    cfg = config()
    cfg.pop("assess")
    write_summary(tmp_path, "tiny_cnn", [0, 1], [0, 1])
    unlabelled = tmp_path / "results" / "tiny_res" / "eval" / "test_summary.json"
    unlabelled.parent.mkdir(parents=True)
    unlabelled.write_text(json.dumps({"labelled": False, "n": 7, "predicted_counts": {"angry": 7},
                                      "mean_confidence": 0.5, "epoch": None}))
    records = [build_record(e, resolved_config(cfg, e), experiment_paths(e, make_outputs(tmp_path, e, scored=False)),
                            root=tmp_path) for e in ("tiny_cnn", "tiny_res")]
    assert [r["scores_status"] for r in records] == ["not configured"] * 2
    assert [r["status"] for r in records] == ["ok", "ok"]
    write_runs(records, tmp_path / "runs.csv", tmp_path / "runs_scores.csv")
    table = rows(tmp_path / "runs.csv")
    columns = list(table[0])
    assert columns[:len(RUN_COLUMNS)] == list(RUN_COLUMNS)
    assert {"test/accuracy", "test/n", "test/mean_confidence"} <= set(columns)
    assert "test/labelled" not in columns  # a flag, not a metric
    assert table[1]["test/accuracy"] == "" and table[1]["test/n"] == "7" and table[0]["test/n"] == ""
    assert table[0]["path/scores"] == "" and table[0]["path/assess_dir"] == ""
    assert rows(tmp_path / "runs_scores.csv") == []
    with pytest.raises(ValueError, match="two records of one experiment"):
        write_runs([records[0], records[0]], tmp_path / "x.csv", tmp_path / "y.csv")


def test_an_absent_output_makes_the_record_incomplete(tmp_path):
    cfg = config()
    inputs = make_outputs(tmp_path, "tiny_cnn")
    shutil.rmtree(tmp_path / inputs["explain_store"])
    record = build_record("tiny_cnn", resolved_config(cfg, "tiny_cnn"), experiment_paths("tiny_cnn", inputs),
                          root=tmp_path)
    assert record["missing"] == ["test_summary", "explain_store", "scores"]
    assert record["status"] == "incomplete" and record["test"] == {} and record["scores_status"] == "missing"


@pytest.mark.parametrize("change,changes_hash", [
    (lambda c: c["train"].update(lr=0.5), True),
    (lambda c: c["explain"]["methods"]["saliency"].update(abs=False), True),
    (lambda c: c["datasets"]["tiny"]["options"].update(seed=9), True),
    (lambda c: c["assess"]["metrics"]["pointing_game"].update(tolerance=3), True),
    (lambda c: c["evaluate"].update(batch_size=7), True),
    (lambda c: c["experiments"]["tiny_cnn"].update(train={"epochs": 5}), True),
    (lambda c: c["resources"]["train"].update(threads=4), False),          # where jobs run, not what
    (lambda c: c["experiments"]["tiny_res"]["train"].update(lr=0.3), False),  # another experiment
    (lambda c: c["models"].update(other={"arch": "resnet18", "input_size": 32}), False),
    (lambda c: c["assess"]["metrics"].update(sparseness={"metric": "sparseness"}), False),  # the same, resolved
    (lambda c: c["explain"].update(on_error="record"), False),  # the default, written out
], ids=["train", "method-param", "dataset", "metric-param", "evaluate", "experiment-override", "resources",
        "other-experiment", "other-model", "same-metric-spelt-out", "default-written-out"])
def test_the_config_hash_covers_what_decides_the_results(change, changes_hash):
    cfg = config()
    before = config_hash(resolved_config(cfg, "tiny_cnn"))
    change(cfg)
    assert (config_hash(resolved_config(cfg, "tiny_cnn")) != before) is changes_hash
    # key order is not part of it
    reordered = json.loads(json.dumps(cfg, sort_keys=True))
    assert config_hash(resolved_config(reordered, "tiny_cnn")) == config_hash(resolved_config(cfg, "tiny_cnn"))


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "-c", "init.defaultBranch=main",
                           *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed (it makes the test repository)")


@needs_git
def test_git_state_reads_the_commit_from_the_repository_files(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    (repo / "workflow" / "scripts").mkdir(parents=True)
    (repo / "tracked.txt").write_text("a")
    git(repo, "init", "-q")
    git(repo, "add", "tracked.txt")
    git(repo, "commit", "-q", "-m", "one")
    head = git(repo, "rev-parse", "HEAD")
    scripts = repo / "workflow" / "scripts"
    assert git_state(scripts) == git_state(repo) and git_state(scripts).commit == head
    assert git_state(repo).dirty is False
    (repo / "untracked.txt").write_text("u")  # untracked files do not count
    assert git_state(repo).dirty is False
    (repo / "tracked.txt").write_text("b")
    assert git_state(repo).dirty is True

    # packed refs (after gc), a detached HEAD and a linked worktree (.git is a file there)
    git(repo, "pack-refs", "--all")
    assert not (repo / ".git" / "refs" / "heads" / "main").exists()
    assert git_state(repo).commit == head
    git(repo, "worktree", "add", "-q", "--detach", str(tmp_path / "wt"), "HEAD")
    assert (tmp_path / "wt" / ".git").is_file() and git_state(tmp_path / "wt").commit == head
    git(repo, "commit", "-q", "-am", "two")
    git(repo, "worktree", "add", "-q", "-b", "side", str(tmp_path / "wt2"), "HEAD")
    assert git_state(tmp_path / "wt2").commit == git(repo, "rev-parse", "HEAD") != head

    # without a git program: the commit still comes from the files, dirtiness is unknown
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    state = git_state(repo)
    assert state.commit == git_state(tmp_path / "wt2").commit and state.dirty is None


def test_outside_a_repository_the_commit_is_unknown(tmp_path):
    state = git_state(tmp_path)
    assert (state.commit, state.dirty) == ("unknown", None)


def test_record_experiment_writes_what_the_rule_writes(tmp_path, monkeypatch):
    cfg = config()
    write_summary(tmp_path, "tiny_cnn", [0, 1], [0, 1])
    write_scores(tmp_path, "tiny_cnn", [score_row("saliency", "pointing_game", 0.5)])
    monkeypatch.chdir(tmp_path)
    resolved = resolved_config(cfg, "tiny_cnn")
    out = tmp_path / "results" / "runs" / "tiny_cnn.json"
    written = record_experiment("tiny_cnn", resolved, make_outputs(tmp_path, "tiny_cnn"), out, tmp_path)
    assert read_record(out) == json.loads(json.dumps(written))
    assert read_record(out)["config"] == resolved and read_record(out)["git_commit"] == "unknown"
