"""Maps of two models on the same images: `compare_to`, `replicates` and ferxai.assess.agreement."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tinyflow import TINY, add_library, make_workdir, planned_jobs, snakemake, write_config

from ferxai.assess.agreement import write_agreement, write_replicate_agreement
from ferxai.assess.files import read_table
from ferxai.config import ConfigError, check_config, expand_replicates, experiment_settings, replicates_of
from ferxai.explain.selection import samples_like, select_samples
from ferxai.explain.shard_files import save_shard

INTERVALS = {"resamples": 200, "level": 0.95, "seed": 0}


def inputs_file(path, ids):
    np.savez(path, ids=np.array(ids, dtype=str), sets=np.array(["high_confidence"] * len(ids), dtype=str))
    return path


def maps_file(path, ids, maps, targets, failed=None):
    meta = {"start": 0, "total": len(ids), **({"failed": failed} if failed else {})}
    save_shard(path, np.asarray(maps, np.float32), list(ids), meta, arrays={"targets": np.asarray(targets)})
    return path


def test_agreement_of_hand_made_maps(tmp_path):
    rng = np.random.default_rng(0)
    ids = [f"img{i}" for i in range(6)]
    ours = inputs_file(tmp_path / "a.npz", ids)
    theirs = inputs_file(tmp_path / "b.npz", ids)
    base = rng.random((6, 12, 12))
    pairs = [
        # the same maps up to sign and scale: every similarity is 1
        ("clean", "same", maps_file(tmp_path / "s1.npz", ids, -3 * base, [0] * 6),
         maps_file(tmp_path / "s2.npz", ids, base, [0] * 6)),
        # independent noise: rank correlation near 0, top-10 % overlap near chance
        ("clean", "noise", maps_file(tmp_path / "n1.npz", ids, rng.random((6, 12, 12)), [1, 1, 1, 2, 2, 2]),
         maps_file(tmp_path / "n2.npz", ids, rng.random((6, 12, 12)), [1, 1, 1, 1, 1, 1])),
        ("clean", "broken", maps_file(tmp_path / "f1.npz", ids, np.full((6, 12, 12), np.nan), [0] * 6,
                                      failed="ValueError: no gradient"),
         maps_file(tmp_path / "f2.npz", ids, base, [0] * 6)),
    ]
    summary = write_agreement(ours, theirs, pairs, 0.1, str(tmp_path / "assess"), tmp_path / "agreement.csv", INTERVALS)
    got = {(r["method"], r["similarity"]): r for r in summary}
    for name in ("rank_correlation", "top_k_iou", "ssim"):
        assert got["same", name]["mean"] == pytest.approx(1.0)
        assert got["same", name]["ci_low"] == pytest.approx(1.0)
    assert abs(got["noise", "rank_correlation"]["mean"]) < 0.2
    assert got["noise", "top_k_iou"]["mean"] < 0.3
    assert got["noise", "rank_correlation"]["same_target"] == pytest.approx(0.5)
    assert got["broken", "rank_correlation"]["status"] == "failed"
    assert "no gradient" in got["broken", "rank_correlation"]["reason"]
    assert got["broken", "rank_correlation"]["n"] == 0
    per_image = read_table(tmp_path / "assess" / "clean" / "noise" / "agreement.csv")
    assert [r["id"] for r in per_image] == ids
    assert [r["target"] for r in per_image] == ["1", "1", "1", "2", "2", "2"]
    assert len(read_table(tmp_path / "agreement.csv")) == 9


def test_agreement_refuses_two_different_selections(tmp_path):
    ours = inputs_file(tmp_path / "a.npz", ["x", "y"])
    theirs = inputs_file(tmp_path / "b.npz", ["y", "x"])
    with pytest.raises(ValueError, match=r"a\.npz and .*b\.npz explain different images"):
        write_agreement(ours, theirs, [], 0.1, str(tmp_path), tmp_path / "s.csv", INTERVALS)


def test_replicate_summary_pools_every_replicate_and_lists_accuracies(tmp_path):
    ids = ["x", "y", "z"]
    roots = {}
    for k, values in (("r2", [1.0, 0.5, 0.0]), ("r3", [0.5, 0.5, 0.5])):
        root = tmp_path / k / "assess"
        (root / "clean" / "saliency").mkdir(parents=True)
        pd.DataFrame({"id": ids, "set": "s", "target": 0, "reference_target": 0, "rank_correlation": values,
                      "top_k_iou": values, "ssim": values}).to_csv(root / "clean" / "saliency" / "agreement.csv",
                                                                    index=False)
        roots[k] = str(root)
    tests = {}
    for k, accuracy in (("base", 0.9), ("r2", 0.91), ("r3", 0.88)):
        tests[k] = tmp_path / f"{k}.json"
        tests[k].write_text(json.dumps({"accuracy": accuracy, "macro_f1": accuracy - 0.01}))
    rows = write_replicate_agreement("base", {"base": 0, "r2": 1, "r3": 2}, tests, roots, [("clean", "saliency")],
                                     INTERVALS, tmp_path / "rep.csv", tmp_path / "acc.csv")
    rank = next(r for r in rows if r["similarity"] == "rank_correlation")
    assert rank["mean"] == pytest.approx(0.5) and rank["n"] == 6 and rank["replicates"] == 3
    accuracy = read_table(tmp_path / "acc.csv")
    assert [(r["experiment"], r["seed"], float(r["accuracy"])) for r in accuracy] == [
        ("base", "0", 0.9), ("r2", "1", 0.91), ("r3", "2", 0.88)]


def predictions(ids, predicted):
    return pd.DataFrame({"id": ids, "label": [0, 1, 0, 1][:len(ids)], "prediction": predicted,
                         "confidence": [0.9, 0.8, 0.7, 0.6][:len(ids)], "prob_a": 0.5, "prob_b": 0.5})


def test_samples_like_takes_the_other_selection_with_this_models_predictions():
    reference = select_samples(predictions(["a", "b", "c", "d"], [0, 1, 1, 0]), num_each=1)
    ours = samples_like(predictions(["a", "b", "c", "d"], [1, 1, 0, 0]), reference)
    assert ours["id"].tolist() == reference["id"].tolist()
    assert ours["set"].tolist() == reference["set"].tolist()
    assert ours.set_index("id")["prediction"].to_dict() == {"a": 1, "b": 1, "c": 0, "d": 0}
    with pytest.raises(ValueError, match=r"ref\.csv: 1 selected images are not among .* e\.g\. 'd'"):
        samples_like(predictions(["a", "b", "c"], [0, 1, 1]), reference, where="ref.csv")


def agreement_config() -> dict:
    cfg = json.loads(json.dumps(TINY))
    cfg["explain"]["methods"] = {"saliency": {}, "edge": {}}
    cfg["experiments"]["tiny_shuffled"] = {"dataset": "tiny", "model": "cnn", "compare_to": "tiny_cnn",
                                           "train": {"shuffle_labels": True}}
    return cfg


@pytest.mark.parametrize("change, message", [
    (lambda c: c["experiments"]["tiny_shuffled"].update(compare_to="nowhere"),
     r"experiments\.tiny_shuffled\.compare_to: 'nowhere' is not another experiment \(tiny_cnn\)"),
    (lambda c: c["experiments"]["tiny_shuffled"].update(compare_to="tiny_shuffled"),
     r"compare_to: 'tiny_shuffled' is not another experiment"),
    (lambda c: (c["datasets"].update(other=c["datasets"]["tiny"]), c["experiments"]["tiny_shuffled"].update(
        dataset="other")), r"compare_to: experiment 'tiny_cnn' explains images of dataset 'tiny', this one is on "
                           r"'other'"),
    (lambda c: c["experiments"]["tiny_cnn"].update(compare_to="tiny_shuffled"),
     r"experiments\.tiny_cnn\.compare_to: the compare_to chain tiny_cnn -> tiny_shuffled -> tiny_cnn is a cycle"),
])
def test_bad_compare_to_fails_at_config_time_naming_the_key(change, message):
    cfg = agreement_config()
    change(cfg)
    with pytest.raises(ConfigError, match=message):
        check_config(cfg)


def test_replicates_are_experiments_with_the_next_seeds_compared_to_the_first():
    cfg = agreement_config()
    cfg["train"]["seed"] = 5
    cfg["experiments"]["tiny_cnn"]["replicates"] = 3
    cfg["experiments"] = expand_replicates(cfg)
    check_config(cfg)
    assert replicates_of(cfg, "tiny_cnn") == ["tiny_cnn", "tiny_cnn_rep2", "tiny_cnn_rep3"]
    assert replicates_of(cfg, "tiny_shuffled") == []
    seeds = [experiment_settings(cfg, e)["train"]["seed"] for e in replicates_of(cfg, "tiny_cnn")]
    assert seeds == [5, 6, 7]
    assert experiment_settings(cfg, "tiny_cnn_rep3")["compare_to"] == "tiny_cnn"
    assert experiment_settings(cfg, "tiny_cnn_rep2")["train"]["epochs"] == cfg["train"]["epochs"]


def test_disjoint_replicates_train_on_the_parts_of_one_partition():
    cfg = agreement_config()
    cfg["experiments"]["tiny_cnn"].update(replicates=3, replicate_data="disjoint")
    cfg["experiments"] = expand_replicates(cfg)
    check_config(cfg)
    trains = [experiment_settings(cfg, e)["train"] for e in replicates_of(cfg, "tiny_cnn")]
    assert [(t["data_part"], t["data_parts"]) for t in trains] == [(0, 3), (1, 3), (2, 3)]
    assert len({t.get("seed", 0) for t in trains}) == 3
    assert "data_parts" not in experiment_settings(cfg, "tiny_shuffled")["train"]


@pytest.mark.parametrize("change, message", [
    (lambda c: c["experiments"]["tiny_cnn"].update(replicate_data="disjoint"),
     r"experiments\.tiny_cnn\.replicate_data: only means something with replicates"),
    (lambda c: c["experiments"]["tiny_cnn"].update(train={"data_parts": 2, "data_part": 2}),
     r"experiments\.tiny_cnn\.train\.data_part: 2 is not one of the 2 parts"),
    (lambda c: c["train"].update(data_part=1),
     r"^train\.data_part: 1 is not one of the 1 parts"),
])
def test_bad_training_parts_fail_naming_the_key(change, message):
    cfg = agreement_config()
    change(cfg)
    with pytest.raises(ConfigError, match=message):
        cfg["experiments"] = expand_replicates(cfg)
        check_config(cfg)


@pytest.mark.parametrize("change, message", [
    (lambda c: c["experiments"].update(tiny_cnn_rep2={"dataset": "tiny", "model": "cnn"}),
     r"experiments\.tiny_cnn\.replicates: replicate 'tiny_cnn_rep2' would replace the experiment of that name"),
    (lambda c: c["experiments"]["tiny_shuffled"].update(model_from="tiny_cnn", replicates=2, train={}),
     r"experiments\.tiny_shuffled\.replicates: .* this experiment trains nothing"),
])
def test_bad_replicates_fail_naming_the_key(change, message):
    cfg = agreement_config()
    cfg["experiments"]["tiny_cnn"]["replicates"] = 2
    change(cfg)
    with pytest.raises(ConfigError, match=message):
        expand_replicates(cfg)


@pytest.mark.slow
def test_shuffled_label_model_and_a_replicate_are_compared_on_the_same_images(tmp_path):
    cfg = agreement_config()
    cfg["experiments"]["tiny_cnn"]["replicates"] = 2
    cfg.pop("assess", None)  # agreement needs no scorecard
    # its own copy of the library: the code fingerprints must not follow edits made meanwhile
    workdir = add_library(make_workdir(tmp_path, cfg))
    planned = planned_jobs(workdir)
    assert sorted(wc for rule, wc in planned if rule == "train") == [
        "experiment=tiny_cnn", "experiment=tiny_cnn_rep2", "experiment=tiny_shuffled"]
    replicate = "results/tiny_cnn/assess/replicate_agreement.csv"
    shuffled = "results/tiny_shuffled/assess/agreement.csv"
    snakemake(workdir, replicate, shuffled)
    samples = {e: pd.read_csv(workdir / "results" / e / "explain" / "samples.csv")
               for e in ("tiny_cnn", "tiny_cnn_rep2", "tiny_shuffled")}
    assert samples["tiny_shuffled"]["id"].tolist() == samples["tiny_cnn"]["id"].tolist()
    assert samples["tiny_cnn_rep2"]["set"].tolist() == samples["tiny_cnn"]["set"].tolist()
    rows = {(r["method"], r["similarity"]): r for r in read_table(workdir / shuffled)}
    # the edge control never looks at the model: its maps are the same for both models
    assert float(rows["edge", "rank_correlation"]["mean"]) == pytest.approx(1.0)
    # saliency's gradients come from two different models
    assert float(rows["saliency", "rank_correlation"]["mean"]) < 0.99
    accuracy = read_table(workdir / "results" / "tiny_cnn" / "assess" / "replicate_accuracy.csv")
    assert [(r["experiment"], r["seed"]) for r in accuracy] == [("tiny_cnn", "0"), ("tiny_cnn_rep2", "1")]
    assert (workdir / "results" / "tiny_cnn" / "assess" / "replicate_agreement.png").stat().st_size > 0
    # a third replicate trains one more model and redoes the summary; the first two stay
    cfg["experiments"]["tiny_cnn"]["replicates"] = 3
    write_config(workdir, cfg)
    again = planned_jobs(workdir)
    assert [wc for rule, wc in again if rule == "train"] == ["experiment=tiny_cnn_rep3"]
    assert ("replicate_agreement", "experiment=tiny_cnn") in again
    assert not any(rule == "assess_agreement" and wc != "experiment=tiny_cnn_rep3" for rule, wc in again)
