"""How similar two models' maps of the same images are, per method.

An experiment with ``compare_to: <other>`` explains the images the other experiment explains, with
its own model; this module compares each method's maps with the other experiment's maps of the
same method, image by image (ferxai.assess.similarity: rank correlation and top-k IoU of |map|,
SSIM). What a high value means depends on how the two models differ:

* a model trained on shuffled labels against the real one (Adebayo et al. 2018's data
  randomisation test): a method whose maps barely change explains the input, not the model
  (the `edge` control, which never looks at the model, scores 1 by construction);
* replicates, models differing only in their training seed (``replicates: K``): agreement says how
  much a method's maps are about the data rather than about one training run.

Outputs: per (condition, method) one CSV per image (root/<condition>/<method>/agreement.csv: id,
set, both targets, the similarities), a summary (method, condition, similarity, mean, ci_low,
ci_high, n, same_target, status, reason) and, for an experiment with replicates, the summary over
all of them with each replicate's test accuracy.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ferxai.assess.files import AGREEMENT, column, per_image_file, read_table, write_table
from ferxai.assess.intervals import bootstrap_mean
from ferxai.assess.similarity import rank_correlation, ssim, top_k_iou
from ferxai.explain.collect import load_inputs
from ferxai.explain.shard_files import load_shard, load_shard_arrays

AGREEMENT_SIMILARITIES = ("rank_correlation", "top_k_iou", "ssim")
PER_IMAGE_COLUMNS = ("id", "set", "target", "reference_target", *AGREEMENT_SIMILARITIES)
SUMMARY_COLUMNS = ("method", "condition", "similarity", "mean", "ci_low", "ci_high", "n", "same_target",
                   "status", "reason")


def similarities(a: np.ndarray, b: np.ndarray, top_k: float) -> dict[str, np.ndarray]:
    """Per image, every agreement similarity of maps `a` and `b` (both (N, H, W))."""
    return {"rank_correlation": rank_correlation(a, b), "top_k_iou": top_k_iou(a, b, top_k), "ssim": ssim(a, b)}


def _method_maps(path: str | os.PathLike, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray, str | None]:
    maps, got, meta = load_shard(path)
    if list(got) != list(ids):
        raise ValueError(f"{path}: holds maps of other images than the explanation inputs "
                         f"({len(got)} maps for {len(ids)} inputs)")
    targets = load_shard_arrays(path).get("targets", np.full(len(ids), -1))
    return maps, np.asarray(targets, dtype=np.int64), meta.get("failed")


def write_agreement(inputs_npz: str | os.PathLike, reference_inputs_npz: str | os.PathLike,
                    pairs: Sequence[tuple[str, str, str, str]], top_k: float, root: str,
                    summary_csv: str | os.PathLike, intervals: Mapping[str, Any]) -> list[dict[str, Any]]:
    """For every (condition, method, maps, reference maps) in `pairs`: the per-image similarities
    to root/<condition>/<method>/agreement.csv, and their means with bootstrap intervals to
    `summary_csv`. The two inputs files must list the same images in the same order. A method that
    failed in either experiment has status "failed" and the reason, and no values."""
    inputs = load_inputs(inputs_npz)
    ids, sets = inputs["ids"].tolist(), inputs["sets"].tolist()
    reference_ids = load_inputs(reference_inputs_npz)["ids"].tolist()
    if reference_ids != ids:
        raise ValueError(f"{inputs_npz} and {reference_inputs_npz} explain different images "
                         f"({len(ids)} and {len(reference_ids)}); compare_to needs the same selection")
    summary: list[dict[str, Any]] = []
    for condition, method, path, reference_path in pairs:
        maps, targets, failed = _method_maps(path, ids)
        reference_maps, reference_targets, reference_failed = _method_maps(reference_path, ids)
        if maps.shape != reference_maps.shape:
            raise ValueError(f"{condition}/{method}: maps {maps.shape} in {path} but {reference_maps.shape} in "
                             f"{reference_path}; the two models must take the same input size")
        values = similarities(maps, reference_maps, top_k)
        write_table(per_image_file(root, condition, method, AGREEMENT), PER_IMAGE_COLUMNS,
                    [(i, s, int(t), int(r), *(float(values[k][n]) for k in AGREEMENT_SIMILARITIES))
                     for n, (i, s, t, r) in enumerate(zip(ids, sets, targets, reference_targets))])
        reason = failed or (f"failed in the compared experiment: {reference_failed}" if reference_failed else "")
        same_target = float(np.mean(targets == reference_targets)) if len(ids) else float("nan")
        for name in AGREEMENT_SIMILARITIES:
            estimate = bootstrap_mean(values[name], **intervals)
            summary.append({"method": method, "condition": condition, "similarity": name, "mean": estimate.mean,
                            "ci_low": estimate.low, "ci_high": estimate.high, "n": estimate.n,
                            "same_target": same_target, "status": "failed" if reason else "ok",
                            "reason": reason})
    write_table(summary_csv, SUMMARY_COLUMNS, [[row[c] for c in SUMMARY_COLUMNS] for row in summary])
    return summary


REPLICATE_COLUMNS = ("method", "condition", "similarity", "mean", "ci_low", "ci_high", "n", "replicates")
ACCURACY_COLUMNS = ("experiment", "seed", "training_data", "accuracy", "macro_f1")


def write_replicate_agreement(base: str, seeds: Mapping[str, int], test_summaries: Mapping[str, str],
                              roots: Mapping[str, str], pairs: Sequence[tuple[str, str]],
                              intervals: Mapping[str, Any], out_csv: str | os.PathLike,
                              accuracy_csv: str | os.PathLike,
                              training_data: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Over all replicates of `base` (`roots`: replicate -> its assess folder, whose agreement files
    compare it with `base`): per (condition, method) and similarity the mean over every image of
    every replicate with a bootstrap interval over those values; and each model's test accuracy,
    so one sees that the replicates are equally good models (`training_data`: experiment -> what
    it trained on, e.g. "part 1 of 2"; "all" where not given)."""
    rows: list[dict[str, Any]] = []
    for condition, method in pairs:
        per_image = {name: [] for name in AGREEMENT_SIMILARITIES}
        for root in roots.values():
            table = read_table(per_image_file(root, condition, method, AGREEMENT))
            for name in AGREEMENT_SIMILARITIES:
                per_image[name].append(column(table, name))
        for name in AGREEMENT_SIMILARITIES:
            estimate = bootstrap_mean(np.concatenate(per_image[name]), **intervals)
            rows.append({"method": method, "condition": condition, "similarity": name, "mean": estimate.mean,
                         "ci_low": estimate.low, "ci_high": estimate.high, "n": estimate.n,
                         "replicates": len(roots) + 1})
    write_table(out_csv, REPLICATE_COLUMNS, [[row[c] for c in REPLICATE_COLUMNS] for row in rows])
    accuracy = []
    for experiment in [base, *roots]:
        with open(test_summaries[experiment], encoding="utf-8") as handle:
            test = json.load(handle)
        accuracy.append((experiment, seeds[experiment], (training_data or {}).get(experiment, "all"),
                         test.get("accuracy"), test.get("macro_f1")))
    write_table(accuracy_csv, ACCURACY_COLUMNS, accuracy)
    return rows


__all__ = ["AGREEMENT", "AGREEMENT_SIMILARITIES", "similarities", "write_agreement", "write_replicate_agreement"]
