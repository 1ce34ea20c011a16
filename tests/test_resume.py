"""A run killed in the middle of training: the rerun repeats only the unfinished jobs, and the
training job continues from its last finished epoch, ending where an uninterrupted run ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from tinyflow import (EXPLAIN_RULES, SNAKEMAKE, TINY, add_default_profile, finished_rules, make_workdir,
                      planned_rules, snakemake)

pytestmark = pytest.mark.slow

EPOCHS = 50  # ~0.05 s each: the kill lands within a few epochs of the first saved state
MODEL = Path("results/tiny_cnn/model")
STATE = MODEL / ".resume.pt"
SAME_BYTES = [MODEL / "best.pt", MODEL / "last.pt", Path("results/tiny_cnn/eval/test_summary.json"),
              Path("results/tiny_cnn/eval/predictions.csv"), Path("results/tiny_cnn/eval/confusion_matrix.csv")]


def config() -> dict:
    cfg = json.loads(json.dumps(TINY))
    cfg["train"].update(epochs=EPOCHS, early_stopping_patience=0)  # no early stop before the kill
    cfg["explain"]["methods"] = {"saliency": {}}
    return cfg


def kill_during_training(workdir: Path) -> str:
    """Run snakemake until training has saved a resume state, then SIGKILL its whole process
    group (a node failure, or Ctrl-C twice); returns what it printed."""
    out_path = workdir / "killed_run.out"
    with open(out_path, "w") as out:
        proc = subprocess.Popen([*SNAKEMAKE, "--cores", "1"], cwd=workdir, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 180
            while not (workdir / STATE).exists():
                if proc.poll() is not None:
                    raise AssertionError("snakemake ended before training saved a resume state:\n"
                                         + out_path.read_text()[-4000:])
                assert time.monotonic() < deadline, "no resume state after 180 s"
                time.sleep(0.05)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    return out_path.read_text()


def train_log(workdir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (workdir / MODEL / "train_log.jsonl").read_text().splitlines()]
    return [{**row, "seconds": None} for row in rows]  # wall time is the one thing that may differ


def test_killed_training_resumes_and_only_unfinished_jobs_rerun(tmp_path):
    reference = make_workdir(tmp_path / "reference", config())
    snakemake(reference, "results/tiny_cnn/eval/test_summary.json")

    # The real default profile (rerun-incomplete), as in a checkout.
    workdir = add_default_profile(make_workdir(tmp_path / "killed", config()))
    killed_output = kill_during_training(workdir)
    done_before = set(finished_rules(killed_output))
    assert {"synthesize_dataset", "manifest", "splits"} <= done_before and "train" not in done_before
    saved_epoch = torch.load(workdir / STATE, weights_only=True)["epoch"]
    assert 1 <= saved_epoch < EPOCHS
    data_files = sorted((workdir / "results" / "data").rglob("*"))
    data_mtimes = {p: p.stat().st_mtime_ns for p in data_files}

    # SIGKILL leaves Snakemake's lock behind; removing it is the user's one manual step.
    snakemake(workdir, "--unlock")
    rerun = snakemake(workdir)
    rerun_jobs = finished_rules(rerun.stdout + rerun.stderr)

    assert not done_before & set(rerun_jobs), "jobs finished before the kill ran again"
    assert {p: p.stat().st_mtime_ns for p in data_files} == data_mtimes
    assert rerun_jobs.count("train") == 1
    assert {"train", "evaluate", "plot_confusion_matrix", "plot_training_curves"} | EXPLAIN_RULES <= set(rerun_jobs)
    assert planned_rules(workdir) == set()

    log = (workdir / "logs" / "tiny_cnn" / "train.log").read_text()
    assert f"resuming from epoch {saved_epoch + 1} of {EPOCHS}" in log
    assert not (workdir / STATE).exists()
    assert not list((workdir / MODEL).glob(".*.tmp"))

    # The resumed run ends exactly where an uninterrupted one does.
    assert train_log(workdir) == train_log(reference)
    assert [r["epoch"] for r in train_log(workdir)] == list(range(1, EPOCHS + 1))
    for path in SAME_BYTES:
        assert (workdir / path).read_bytes() == (reference / path).read_bytes(), path
