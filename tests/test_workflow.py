"""The Snakemake DAG end to end on a tiny configuration, run by the real snakemake."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
import yaml

from conftest import REPO
from tinyflow import (EXPLAIN_RULES, SNAKEMAKE, TINY, current_config, make_workdir, planned_jobs,
                      planned_rules, snakemake, write_config)

pytestmark = pytest.mark.slow
# the run records (records.smk) name every experiment's config and read its results
RECORD_RULES = {"run_record", "runs_table"}

@pytest.fixture(scope="module")
def built(tmp_path_factory):
    workdir = make_workdir(tmp_path_factory.mktemp("dag"), json.loads(json.dumps(TINY)))
    snakemake(workdir)
    return workdir


def test_full_run_produces_every_target(built):
    exp = built / "results" / "tiny_cnn"
    summary = json.loads((exp / "eval" / "test_summary.json").read_text())
    assert 0.0 <= summary["accuracy"] <= 1.0 and summary["num_samples"] > 0
    for plot in ("confusion_matrix", "confusion_matrix_normalized", "train_loss", "val_loss",
                 "val_accuracy", "val_macro_f1"):
        assert (exp / "eval" / "plots" / f"{plot}.png").stat().st_size > 1000
    records = [json.loads(line) for line in (exp / "model" / "train_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    for split in ("train", "val", "test"):
        assert (built / "results" / "data" / "tiny" / "splits" / f"{split}.csv").exists()
    # every rule logged and benchmarked
    assert (built / "logs" / "tiny_cnn" / "train.log").stat().st_size > 0
    assert (built / "benchmarks" / "tiny_cnn" / "train.tsv").exists()


def test_second_run_does_nothing(built):
    assert planned_rules(built) == set()


def test_training_parameter_change_reruns_training_and_evaluation_only(built):
    data_files = sorted((built / "results" / "data").rglob("*.csv"))
    before = {p: p.stat().st_mtime_ns for p in data_files}
    old_ckpt = (built / "results" / "tiny_cnn" / "model" / "best.pt").read_bytes()

    cfg = json.loads(json.dumps(TINY))
    cfg["train"]["lr"] = 0.01
    write_config(built, cfg)
    # The shard jobs follow from the config alone (explain.shards), so the dry run lists them too.
    assert planned_rules(built) == ({"train", "evaluate", "plot_confusion_matrix", "plot_training_curves"}
                                    | EXPLAIN_RULES | RECORD_RULES)

    snakemake(built)
    assert {p: p.stat().st_mtime_ns for p in data_files} == before
    assert (built / "results" / "tiny_cnn" / "model" / "best.pt").read_bytes() != old_ckpt
    assert planned_rules(built) == set()


def test_explanations_are_built_per_method(built):
    exp = built / "results" / "tiny_cnn" / "explain"
    import zarr

    store = zarr.open_group(str(exp / "store.zarr"), mode="r")
    n = store["images"].shape[0]
    assert n > 0 and store["labels"].shape == (n,)
    for method in ("saliency", "gradcam"):
        maps = store[f"attributions/clean/{method}"][:]
        assert maps.shape == (n, 32, 32) and np.isfinite(maps).all() and np.abs(maps).sum() > 0
        assert (exp / "clean" / method / "gallery.png").stat().st_size > 1000
        assert len(list((exp / "clean" / method / "overlays").glob("*.png"))) == n
        assert json.loads((exp / "preflight" / f"{method}.json").read_text())["batch_size"] in (2, 8)
    assert len(list((exp / "clean" / "grids").glob("*.png"))) == n


def test_explained_images_carry_their_ground_truth_masks(built):
    """The synthetic faces' masks reach the explanation inputs, pixel-aligned with the images."""
    import pandas as pd

    from ferxai.data.synthetic import load_mask

    inputs = np.load(built / "results" / "tiny_cnn" / "explain" / "inputs.npz")
    n = len(inputs["ids"])
    assert inputs["masks"].shape == (n, 32, 32) and inputs["masks"].dtype == bool
    assert inputs["has_mask"].all()
    test = pd.read_csv(built / "results" / "data" / "tiny" / "splits" / "test.csv", dtype={"id": str}).set_index("id")
    for image_id, mask in zip(inputs["ids"], inputs["masks"]):
        expected = load_mask(built / test.loc[image_id, "mask"])
        assert expected.shape == (32, 32)
        np.testing.assert_array_equal(mask, expected)
    assert 0.0 < inputs["masks"].mean() < 0.5


def test_retuning_one_method_reruns_only_that_method(built):
    original = current_config(built)
    cfg = current_config(built)
    cfg["explain"]["methods"]["saliency"] = {"abs": False}
    write_config(built, cfg)
    jobs = planned_jobs(built)
    per_method = [(rule, wc) for rule, wc in jobs if "method=" in wc]
    assert per_method and all("method=saliency" in wc for _, wc in per_method)
    assert {rule for rule, _ in jobs} == {"preflight", "attribute", "gather_attributions",
                                          "explanation_store", "method_grids"} | RECORD_RULES
    write_config(built, original)
    assert planned_rules(built) == set()


def test_a_new_shard_count_replans_every_shard_from_the_config_alone(built):
    """explain.shards is known before any image is selected: the dry run lists the new shard jobs
    (with no checkpoint to wait for), and the selection, training and evaluation stay as they are."""
    original = current_config(built)
    cfg = current_config(built)
    shards = original["explain"]["shards"] + 1
    cfg["explain"]["shards"] = shards
    write_config(built, cfg)
    jobs = planned_jobs(built)
    assert {rule for rule, _ in jobs} == {"preflight", "attribute", "gather_attributions",
                                          "explanation_store", "method_grids"} | RECORD_RULES
    methods, conditions = original["explain"]["methods"], original["explain"].get("conditions", ["clean"])
    attribute = [wc for rule, wc in jobs if rule == "attribute"]
    # shard 0 of the first condition is explained by each method's preflight job
    assert len(attribute) == len(methods) * (len(conditions) * shards - 1)
    assert any(f"shard={shards - 1}" in wc for wc in attribute)
    write_config(built, original)
    assert planned_rules(built) == set()


def test_adding_a_method_reruns_nothing_else(built):
    original = current_config(built)
    cfg = current_config(built)
    cfg["explain"]["methods"]["ig_blur"] = {"method": "integrated_gradients", "baseline": "blur", "n_steps": 8}
    write_config(built, cfg)
    jobs = planned_jobs(built)
    per_method = [(rule, wc) for rule, wc in jobs if "method=" in wc]
    assert per_method and all("method=ig_blur" in wc for _, wc in per_method)
    assert {rule for rule, _ in jobs} - {"preflight", "attribute", "gather_attributions"} == {
        "explanation_store", "method_grids"} | RECORD_RULES
    write_config(built, original)


def test_unknown_method_or_parameter_fails_validation_naming_it(tmp_path):
    for methods, expected in (({"salency": {}}, "salency"), ({"saliency": {"abz": True}}, "abz"),
                              ({"saliency": {"abs": "yes"}}, "'abs'")):
        cfg = json.loads(json.dumps(TINY))
        cfg["explain"]["methods"] = methods
        workdir = make_workdir(tmp_path / expected.strip("'"), cfg)
        proc = subprocess.run([*SNAKEMAKE, "-n"], cwd=workdir, capture_output=True, text=True)
        assert proc.returncode != 0
        assert expected in proc.stdout + proc.stderr


def test_lint_is_clean():
    proc = subprocess.run([*SNAKEMAKE, "--lint"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations" in proc.stdout + proc.stderr


def test_config_cross_reference_error_names_the_field(tmp_path):
    cfg = json.loads(json.dumps(TINY))
    cfg["experiments"]["tiny_cnn"]["model"] = "nope"
    workdir = make_workdir(tmp_path, cfg)
    proc = subprocess.run([*SNAKEMAKE, "-n"], cwd=workdir, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "experiments.tiny_cnn.model" in proc.stdout + proc.stderr


def test_config_error_names_the_configfile_that_set_the_value(tmp_path):
    workdir = make_workdir(tmp_path, json.loads(json.dumps(TINY)))
    (workdir / "mine.yaml").write_text(yaml.safe_dump({"experiments": {"tiny_cnn": {"model": "nope"}}}))
    proc = subprocess.run([*SNAKEMAKE, "-n", "--configfile", "mine.yaml"], cwd=workdir,
                          capture_output=True, text=True)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "mine.yaml: experiments.tiny_cnn.model" in out
    assert "config/config.yaml: experiments" not in out


def test_schema_rejects_unknown_training_key(tmp_path):
    cfg = json.loads(json.dumps(TINY))
    cfg["train"]["epochz"] = 3
    workdir = make_workdir(tmp_path, cfg)
    proc = subprocess.run([*SNAKEMAKE, "-n"], cwd=workdir, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "epochz" in proc.stdout + proc.stderr


def test_bring_your_own_checkpoint_on_a_fer2013_csv(tmp_path):
    """A model trained elsewhere is imported (no training job) and evaluated on FER2013-format data."""
    import numpy as np
    import torch

    from ferxai.models import build_model

    rng = np.random.default_rng(0)
    rows = ["emotion,pixels,Usage"]
    for i in range(42):
        usage = ("Training", "PublicTest", "PrivateTest")[i % 3]
        pixels = " ".join(map(str, rng.integers(0, 256, 48 * 48)))
        rows.append(f"{i % 7},{pixels},{usage}")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "fer2013.csv").write_text("\n".join(rows) + "\n")
    model = build_model("fer_cnn", num_classes=7, in_channels=1, input_size=48, widths=[8, 8, 8])
    # DataParallel-style keys, as many published checkpoints have them.
    torch.save({"module." + k: v for k, v in model.state_dict().items()}, tmp_path / "data" / "mine.pt")

    cfg = {
        "datasets": {"fer": {"format": "fer2013_csv", "options": {"path": "data/fer2013.csv"}}},
        "models": {"mine": {"arch": "fer_cnn", "input_size": 48, "channels": 1,
                            "options": {"widths": [8, 8, 8]}, "checkpoint": "data/mine.pt"}},
        "train": {"epochs": 1},
        "experiments": {"fer_mine": {"dataset": "fer", "model": "mine"}},
        "resources": {"evaluate": {"gpu": 0, "threads": 1}},
    }
    workdir = make_workdir(tmp_path, cfg)
    assert planned_rules(workdir) == {"manifest", "splits", "import_checkpoint", "evaluate", "plot_confusion_matrix"} \
        | RECORD_RULES
    snakemake(workdir)
    exp = workdir / "results" / "fer_mine"
    summary = json.loads((exp / "eval" / "test_summary.json").read_text())
    assert summary["num_samples"] == 14  # PrivateTest rows
    assert not (exp / "model" / "best.pt").exists()
    assert (exp / "eval" / "plots" / "confusion_matrix.png").exists()
    manifest = (workdir / "results" / "data" / "fer" / "manifest.csv").read_text()
    assert "fer2013.csv#row=1," in manifest
