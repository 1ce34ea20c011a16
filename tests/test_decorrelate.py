"""Decorrelated attributions (explain.decorrelate): every method explains its own model, and the
method-against-method agreement of ferxai.assess.method_agreement."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr

from tinyflow import TINY, add_library, make_workdir, planned_jobs, snakemake, write_config

from ferxai.assess.files import read_table
from ferxai.assess.method_agreement import write_method_agreement
from ferxai.config import (ConfigError, check_config, expand_decorrelated, experiment_settings, explained,
                           method_model_seed, method_models)
from ferxai.explain.shard_files import save_shard
from ferxai.report.targets import not_scored, report_targets
from ferxai.stage_files import assess_targets, explain_targets

INTERVALS = {"resamples": 200, "level": 0.95, "seed": 0}


def decorrelated_config() -> dict:
    cfg = json.loads(json.dumps(TINY))
    cfg["explain"]["methods"] = {"saliency": {}, "gradcam": {}, "edge": {}}
    cfg["experiments"]["tiny_decorrelated"] = {"dataset": "tiny", "model": "cnn", "decorrelate": True,
                                               "compare_to": "tiny_cnn"}
    return cfg


def test_each_model_method_gets_a_model_of_its_own_seed_and_controls_keep_the_experiments():
    cfg = decorrelated_config()
    cfg["train"]["seed"] = 3
    cfg["experiments"] = expand_decorrelated(cfg)
    check_config(cfg)
    assert set(cfg["experiments"]) == {"tiny_cnn", "tiny_decorrelated", "tiny_decorrelated_for_saliency",
                                       "tiny_decorrelated_for_gradcam"}
    assert method_models(cfg, "tiny_decorrelated") == {"saliency": "tiny_decorrelated_for_saliency",
                                                       "gradcam": "tiny_decorrelated_for_gradcam"}
    assert method_models(cfg, "tiny_cnn") == {}
    seeds = {e: experiment_settings(cfg, e)["train"]["seed"] for e in cfg["experiments"]}
    # no two methods' models share a seed, nor with the experiment's own (which selects the images)
    assert len({seeds["tiny_decorrelated"], seeds["tiny_decorrelated_for_saliency"],
                seeds["tiny_decorrelated_for_gradcam"]}) == 3
    assert seeds["tiny_decorrelated_for_gradcam"] == method_model_seed(3, "gradcam")
    # the same recipe otherwise
    assert experiment_settings(cfg, "tiny_decorrelated_for_saliency")["train"]["epochs"] == cfg["train"]["epochs"]
    # the method models are trained and evaluated, never explained or scored themselves
    assert not explained(cfg, "tiny_decorrelated_for_saliency") and explained(cfg, "tiny_decorrelated")
    assert explain_targets(cfg, "tiny_decorrelated_for_saliency") == []
    assert assess_targets(cfg, "tiny_decorrelated_for_saliency") == []
    assert explain_targets(cfg, "tiny_decorrelated")
    # the report's run facts say what such a model is for, and list no report pages for it
    assert "explains method 'saliency' of experiment 'tiny_decorrelated'" in not_scored(
        cfg, "tiny_decorrelated_for_saliency")
    assert not any("_for_" in t for t in report_targets(cfg))


def test_adding_a_method_keeps_every_other_method_models_seed():
    cfg = decorrelated_config()
    before = {e: experiment_settings({**cfg, "experiments": expand_decorrelated(cfg)}, e)["train"].get("seed")
              for e in expand_decorrelated(cfg)}
    cfg["explain"]["methods"] = {"occlusion": {}, **cfg["explain"]["methods"]}
    expanded = {**cfg, "experiments": expand_decorrelated(cfg)}
    after = {e: experiment_settings(expanded, e)["train"].get("seed") for e in expanded["experiments"]}
    assert set(after) - set(before) == {"tiny_decorrelated_for_occlusion"}
    assert {e: after[e] for e in before} == before


def test_explain_decorrelate_applies_to_every_experiment_unless_one_says_otherwise():
    cfg = decorrelated_config()
    cfg["explain"]["decorrelate"] = True
    cfg["experiments"]["tiny_decorrelated"].pop("decorrelate")
    cfg["experiments"]["tiny_cnn"]["decorrelate"] = False
    expanded = {**cfg, "experiments": expand_decorrelated(cfg)}
    assert method_models(expanded, "tiny_cnn") == {}
    assert set(method_models(expanded, "tiny_decorrelated")) == {"saliency", "gradcam"}


@pytest.mark.parametrize("change, message", [
    (lambda c: c["experiments"]["tiny_decorrelated"].update(model_from="tiny_cnn", compare_to=None),
     r"experiments\.tiny_decorrelated\.decorrelate: experiment 'tiny_decorrelated' trains no model"),
    (lambda c: c["experiments"]["tiny_decorrelated"].update(replicates=2),
     r"experiments\.tiny_decorrelated\.decorrelate: .* also has replicates"),
    (lambda c: c["experiments"].update(tiny_decorrelated_for_gradcam={"dataset": "tiny", "model": "cnn"}),
     r"decorrelate: the model of method 'gradcam' would be experiment 'tiny_decorrelated_for_gradcam', which the "
     r"configuration already has"),
    (lambda c: (c["explain"].update(decorrelate=True), c["experiments"]["tiny_decorrelated"].pop("decorrelate"),
                c["experiments"]["tiny_cnn"].update(model_from="tiny_decorrelated")),
     r"^explain\.decorrelate: experiment 'tiny_cnn' trains no model"),
])
def test_bad_decorrelation_fails_at_config_time_naming_the_key(change, message):
    cfg = decorrelated_config()
    change(cfg)
    with pytest.raises(ConfigError, match=message):
        expand_decorrelated(cfg)


def maps_file(path, ids, maps, model, failed=None):
    meta = {"start": 0, "total": len(ids), "model": model, **({"failed": failed} if failed else {})}
    save_shard(path, np.asarray(maps, np.float32), list(ids), meta)
    return path


def test_method_agreement_of_hand_made_maps(tmp_path):
    rng = np.random.default_rng(1)
    ids = [f"img{i}" for i in range(8)]
    inputs = tmp_path / "inputs.npz"
    np.savez(inputs, ids=np.array(ids, dtype=str))
    base = rng.random((8, 10, 10))
    maps = [("clean", "a", maps_file(tmp_path / "a.npz", ids, base, "m1.pt")),
            ("clean", "scaled_a", maps_file(tmp_path / "b.npz", ids, 5 * base, "m2.pt")),
            ("clean", "noise", maps_file(tmp_path / "c.npz", ids, rng.random((8, 10, 10)), "m3.pt")),
            ("clean", "broken", maps_file(tmp_path / "d.npz", ids, np.full((8, 10, 10), np.nan), "m4.pt",
                                          failed="RuntimeError: no layer"))]
    rows = write_method_agreement(inputs, maps, 0.1, tmp_path / "method_agreement.csv", INTERVALS)
    got = {(r["method_a"], r["method_b"], r["similarity"]): r for r in rows}
    assert len({(a, b) for a, b, _ in got}) == 6  # every pair once
    assert got["a", "scaled_a", "rank_correlation"]["mean"] == pytest.approx(1.0)
    assert got["a", "scaled_a", "ssim"]["mean"] == pytest.approx(1.0)
    assert abs(got["a", "noise", "rank_correlation"]["mean"]) < 0.2
    assert got["a", "noise", "rank_correlation"]["model_b"] == "m3.pt"
    assert got["noise", "broken", "top_k_iou"]["status"] == "failed"
    assert "broken failed: RuntimeError: no layer" in got["noise", "broken", "top_k_iou"]["reason"]
    assert [r["method_a"] for r in read_table(tmp_path / "method_agreement.csv")][:3] == ["a", "a", "a"]
    np.savez(inputs, ids=np.array(ids[:-1], dtype=str))
    with pytest.raises(ValueError, match=r"a\.npz: holds maps of other images"):
        write_method_agreement(inputs, maps, 0.1, tmp_path / "again.csv", INTERVALS)


@pytest.mark.slow
def test_each_method_is_explained_with_its_own_model_and_the_store_says_which(tmp_path):
    cfg = decorrelated_config()
    cfg.pop("assess", None)
    workdir = add_library(make_workdir(tmp_path, cfg))
    planned = planned_jobs(workdir)
    assert sorted(wc for rule, wc in planned if rule == "train") == [
        "experiment=tiny_cnn", "experiment=tiny_decorrelated", "experiment=tiny_decorrelated_for_gradcam",
        "experiment=tiny_decorrelated_for_saliency"]
    # the method models are evaluated (their accuracy is known) but explain nothing
    assert ("evaluate", "experiment=tiny_decorrelated_for_saliency") in planned
    assert not any(rule == "select_samples" and "_for_" in wc for rule, wc in planned)
    snakemake(workdir)
    store = zarr.open_group(str(workdir / "results/tiny_decorrelated/explain/store.zarr"), mode="r")
    models = {m: store["attributions/clean"][m].attrs["model"] for m in ("saliency", "gradcam", "edge")}
    assert models == {"saliency": "results/tiny_decorrelated_for_saliency/model/best.pt",
                      "gradcam": "results/tiny_decorrelated_for_gradcam/model/best.pt",
                      "edge": "results/tiny_decorrelated/model/best.pt"}
    shared = zarr.open_group(str(workdir / "results/tiny_cnn/explain/store.zarr"), mode="r")
    assert {shared["attributions/clean"][m].attrs["model"] for m in ("saliency", "gradcam")} == {
        "results/tiny_cnn/model/best.pt"}
    # the same images, and both experiments' methods compared pair by pair
    assert list(store["ids"][:]) == list(shared["ids"][:])
    for experiment in ("tiny_decorrelated", "tiny_cnn"):
        rows = read_table(workdir / f"results/{experiment}/assess/method_agreement.csv")
        assert {frozenset((r["method_a"], r["method_b"])) for r in rows} == {
            frozenset(p) for p in (("saliency", "gradcam"), ("saliency", "edge"), ("gradcam", "edge"))}
        assert all(r["status"] == "ok" for r in rows)
    # the experiment's training recipe is its method models' too: they retrain with it, the compared one does not
    cfg["experiments"]["tiny_decorrelated"]["train"] = {"lr": 0.01}
    write_config(workdir, cfg)
    again = planned_jobs(workdir)
    trained = sorted(wc for rule, wc in again if rule == "train")
    assert "experiment=tiny_cnn" not in trained and len(trained) == 3
