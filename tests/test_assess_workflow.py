"""The scoring stage (workflow/rules/assess.smk) end to end on a tiny configuration: what it
writes, what a change reruns, and what the config check refuses."""

from __future__ import annotations

import csv
import json
import subprocess

import numpy as np
import pytest

from tinyflow import SNAKEMAKE, TINY, current_config, make_workdir, planned_jobs, snakemake, write_config

pytestmark = pytest.mark.slow

METHODS = ["saliency", "gradcam", "random", "edge"]
# a method that cannot run on this model: recorded as failed, not missing (explain.on_error: record)
BROKEN = {"broken_cam": {"method": "gradcam", "target_layer": "features.no_such_block"}}
CONDITIONS = ["clean", "gaussian-0.2"]
METRICS = {"pointing_game": {"tolerance": 1}, "relevance_mass": {}, "deletion": {"steps": 4},
           "deletion_lerf": {"metric": "deletion", "steps": 4, "order": "least"}, "road": {"percentiles": [50]},
           "max_sensitivity": {"samples": 2, "max_images": 3}, "sparseness": {}}


def tiny_assess_config() -> dict:
    cfg = json.loads(json.dumps(TINY))
    cfg["train"]["epochs"] = 3
    cfg["explain"]["methods"] = {**{m: {} for m in METHODS}, **BROKEN}
    cfg["explain"]["conditions"] = CONDITIONS
    cfg["assess"] = {"device": "cpu", "metrics": METRICS, "randomisation": {"images": 2},
                     "intervals": {"resamples": 200}}
    return cfg


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    workdir = make_workdir(tmp_path_factory.mktemp("assess"), tiny_assess_config())
    snakemake(workdir)
    return workdir


def rows(path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_scorecard_has_every_method_condition_and_metric(scored):
    assess = scored / "results" / "tiny_cnn" / "assess"
    scores = rows(assess / "scores.csv")
    explained = len(np.load(scored / "results" / "tiny_cnn" / "explain" / "inputs.npz")["ids"])
    for condition in CONDITIONS:
        for method in METHODS:
            for label in METRICS:
                per_image = rows(assess / condition / method / f"{label}.csv")
                assert [r["id"] for r in per_image] == list(
                    np.load(scored / "results" / "tiny_cnn" / "explain" / "inputs.npz")["ids"])
                row = [r for r in scores if (r["method"], r["condition"], r["metric"]) == (method, condition, label)]
                assert len(row) == 1 and row[0]["status"] == "ok"
                values = [float(r["value"]) for r in per_image if r["value"]]
                assert float(row[0]["mean"]) == pytest.approx(np.mean(values))
                assert float(row[0]["ci_low"]) <= float(row[0]["mean"]) <= float(row[0]["ci_high"])
                assert int(row[0]["n"]) == len(values) <= explained
                if label == "max_sensitivity":  # recomputed maps: only the first images
                    assert len(values) == 3
    directions = {r["metric"]: r["direction"] for r in scores}
    assert directions["deletion"] == "lower" and directions["deletion_lerf"] == "higher"
    assert {r["method"] for r in scores if r["control"] == "True"} == {"random", "edge"}
    assert {r["metric"] for r in scores if r["family"] == "cost"} == {"seconds_per_image", "passes_per_image"}
    reliability = rows(assess / "metric_reliability.csv")
    assert {(r["metric"], r["condition"]) for r in reliability} >= {(m, c) for m in METRICS for c in CONDITIONS}
    for name in ("leaderboard", "faithfulness_vs_cost", "sanity_checks", "robustness", "mask_zoom"):
        assert (assess / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_failed_method_is_in_the_scorecard_with_its_reason(scored):
    results = scored / "results" / "tiny_cnn"
    scores = [r for r in rows(results / "assess" / "scores.csv") if r["method"] == "broken_cam"]
    assert scores and all(r["status"] == "failed" for r in scores)
    assert all("no_such_block" in r["reason"] and r["rank"] == "" and r["mean"] == "" for r in scores)
    assert {r["metric"] for r in scores} >= set(METRICS)
    preflight = json.loads((results / "explain" / "preflight" / "broken_cam.json").read_text())
    assert "no_such_block" in preflight["failed"]
    assert (results / "explain" / "clean" / "broken_cam" / "gallery.png").read_bytes()[:4] == b"\x89PNG"
    import zarr

    store = zarr.open_group(str(results / "explain" / "store.zarr"), mode="r")
    assert "no_such_block" in store["attributions/clean/broken_cam"].attrs["failed"]
    # the other methods are ranked among themselves
    assert all(r["rank"] for r in rows(results / "assess" / "scores.csv")
               if r["method"] in METHODS and r["family"] not in ("cost",) and r["status"] == "ok")


def test_masks_and_per_image_scores_are_in_zarr_beside_the_maps(scored):
    import zarr

    results = scored / "results" / "tiny_cnn"
    inputs = np.load(results / "explain" / "inputs.npz")
    store = zarr.open_group(str(results / "explain" / "store.zarr"), mode="r")
    np.testing.assert_array_equal(store["masks"][:], inputs["masks"])
    assert store["has_mask"][:].all() and inputs["masks"].any()
    scores = zarr.open_group(str(results / "assess" / "scores.zarr"), mode="r")
    methods = [str(m) for m in scores["methods"][:]]
    assert [str(i) for i in scores["ids"][:]] == list(inputs["ids"])
    for condition, metric, method in (("clean", "relevance_mass", "saliency"), ("gaussian-0.2", "deletion", "edge")):
        want = [float(r["value"]) if r["value"] else np.nan
                for r in rows(results / "assess" / condition / method / f"{metric}.csv")]
        np.testing.assert_array_equal(scores[f"scores/{condition}/{metric}"][:, methods.index(method)], want)
    assert scores["scores/clean/deletion"].attrs["direction"] == "lower"


def test_shards_score_as_the_whole_selection_would(scored):
    """The faithfulness and sensitivity jobs run per shard; every random draw is seeded by the
    image's position in the selection, so the gathered scores equal one call on all images."""
    import torch

    from ferxai.assess import catalog
    from ferxai.explain import make_explainer
    from ferxai.explain.shard_files import load_shard, load_shard_arrays
    from ferxai.models import load_checkpoint

    results = scored / "results" / "tiny_cnn"
    inputs = np.load(results / "explain" / "inputs.npz")
    attributions = results / "explain" / "clean" / "saliency" / "attributions.npz"
    maps, _, meta = load_shard(attributions)
    assert len(list((results / "assess" / "clean" / "saliency" / "faithfulness").glob("shard-*.csv"))) >= 2
    model, _ = load_checkpoint(results / "model" / "best.pt")
    forward = torch.nn.Sequential(model, torch.nn.Softmax(dim=1)).eval()
    x = torch.from_numpy(inputs["images"]).float().div(255)
    targets = torch.from_numpy(load_shard_arrays(attributions)["targets"]).long()
    road = catalog.load("road")(forward, x, torch.from_numpy(maps), targets, batch_size=7, percentiles=[50])
    want = [float(r["value"]) for r in rows(results / "assess" / "clean" / "saliency" / "road.csv")]
    np.testing.assert_allclose(road.numpy(), want, rtol=1e-5, atol=1e-6)
    explainer = make_explainer("saliency", model, arch="fer_cnn")
    sensitivity = catalog.load("max_sensitivity")(explainer.attribute, x, torch.from_numpy(maps), targets,
                                                  samples=2, max_images=3, per_call=2)
    got = [float(r["value"]) if r["value"] else np.nan
           for r in rows(results / "assess" / "clean" / "saliency" / "max_sensitivity.csv")]
    np.testing.assert_allclose(sensitivity.numpy(), got, rtol=1e-5, atol=1e-6)


def test_randomisation_separates_the_model_from_a_control_that_ignores_it(scored):
    assess = scored / "results" / "tiny_cnn" / "assess" / "clean"
    edge = rows(assess / "edge" / "randomisation.csv")
    saliency = rows(assess / "saliency" / "randomisation.csv")
    steps = {r["step"] for r in saliency}
    assert len(steps) > 3 and len({r["id"] for r in saliency}) == 2
    # the edge map is the input's Sobel magnitude: no layer of the model changes it
    assert all(float(r["rank_correlation"]) == pytest.approx(1.0) for r in edge)
    assert all(float(r["ssim"]) == pytest.approx(1.0) for r in edge)
    # a gradient changes once its layers are random
    assert max(float(r["rank_correlation"]) for r in saliency if r["step"] == max(steps, key=int)) < 0.9


def test_robustness_compares_each_noise_condition_with_the_first(scored):
    per_image = rows(scored / "results" / "tiny_cnn" / "assess" / "gaussian-0.2" / "edge" / "robustness.csv")
    values = [float(r["rank_correlation"]) for r in per_image]
    # the noisy image's edges are not the clean image's, but they are related
    assert all(-1 <= v < 1 for v in values) and np.mean(values) > 0


def assess_rules_planned(workdir) -> tuple[set[str], list[tuple[str, str]]]:
    jobs = planned_jobs(workdir)
    return {rule for rule, _ in jobs}, jobs


@pytest.mark.parametrize("change,expected", [
    (lambda cfg: cfg["assess"]["metrics"]["deletion"].update(steps=6),
     {"assess_preflight", "assess_faithfulness", "assess_gather", "assess_scores"}),  # preflight: sized by them
    (lambda cfg: cfg["assess"]["metrics"]["pointing_game"].update(tolerance=2),
     {"assess_localisation", "assess_mask_zoom", "assess_scores"}),
    (lambda cfg: cfg["assess"]["metrics"].update(entropy={}), {"assess_complexity", "assess_scores"}),
    (lambda cfg: cfg["assess"]["randomisation"].update(images=3), {"assess_randomisation", "assess_scores"}),
    (lambda cfg: cfg["assess"]["intervals"].update(resamples=300), {"assess_scores"}),
    (lambda cfg: cfg["assess"]["metrics"]["max_sensitivity"].update(radius=0.05), {"assess_sensitivity", "assess_gather", "assess_scores"}),
], ids=["faithfulness-param", "localisation-param", "new-complexity-metric", "randomisation-subset", "intervals",
        "sensitivity-param"])
def test_a_metric_change_reruns_only_its_family_and_the_scorecard(scored, change, expected):
    original = current_config(scored)
    cfg = current_config(scored)
    change(cfg)
    write_config(scored, cfg)
    try:
        rules, _ = assess_rules_planned(scored)
        assert rules == expected | {"run_record", "runs_table"}  # the records name the config and scores
    finally:
        write_config(scored, original)


def test_retuning_a_method_rescores_only_that_method(scored):
    original = current_config(scored)
    cfg = current_config(scored)
    cfg["explain"]["methods"]["saliency"] = {"abs": False}
    write_config(scored, cfg)
    try:
        jobs = planned_jobs(scored)
        per_method = [(rule, wc) for rule, wc in jobs if rule.startswith("assess_") and "method=" in wc]
        assert per_method and all("method=saliency" in wc for _, wc in per_method)
        assert {"assess_faithfulness", "assess_sensitivity", "assess_randomisation", "assess_localisation",
                "assess_scores"} <= {rule for rule, _ in jobs}
    finally:
        write_config(scored, original)


def dry_run_error(tmp_path, cfg) -> str:
    workdir = make_workdir(tmp_path, cfg)
    proc = subprocess.run([*SNAKEMAKE, "-n", "--cores", "1"], cwd=workdir, capture_output=True, text=True)
    assert proc.returncode != 0
    return proc.stdout + proc.stderr


def test_localisation_without_masks_fails_at_config_time_naming_metric_and_experiment(tmp_path):
    cfg = tiny_assess_config()
    (tmp_path / "data" / "faces" / "happy").mkdir(parents=True)
    cfg["datasets"]["faces"] = {"format": "folder", "options": {"root": "data/faces"}}
    cfg["experiments"]["faces_cnn"] = {"dataset": "faces", "model": "cnn"}
    out = dry_run_error(tmp_path / "w", cfg)
    assert "assess.metrics.pointing_game" in out and "'faces_cnn'" in out and "masks" in out


@pytest.mark.parametrize("metrics,key", [
    ({"deletion": {"steps": 0}}, "assess.metrics.deletion.steps"),
    ({"deletion": {"stepz": 4}}, "assess.metrics.deletion.stepz"),
    ({"my_score": {}}, "assess.metrics.my_score"),
    ({"robustness": {"metric": "auroc"}}, "assess.metrics.robustness"),
    ({"road": {"percentiles": [0, 50]}}, "assess.metrics.road.percentiles"),
])
def test_bad_metric_settings_fail_at_config_time_naming_the_key(tmp_path, metrics, key):
    cfg = tiny_assess_config()
    cfg["assess"]["metrics"] = metrics
    assert key in dry_run_error(tmp_path, cfg)
