"""How alike the maps of different methods are, pair by pair, on the same images.

Two methods explaining one model agree partly because they look at the same model: its features
shape every gradient and every occlusion. A decorrelated experiment (explain.decorrelate) explains
each method with its own, independently trained model, which removes that shared part. The pairwise
agreement of the two experiments' methods on the same images (compare_to) says how much of the
methods' agreement comes from the shared model.

Output: one row per (condition, method pair, similarity) with the mean over images and its
bootstrap interval (ferxai.assess.similarity: rank correlation and top-k IoU of |map|, SSIM).
A pair with a failed method has status "failed" and no values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np

from ferxai.assess.agreement import AGREEMENT_SIMILARITIES, similarities
from ferxai.assess.files import write_table
from ferxai.assess.intervals import bootstrap_mean
from ferxai.explain.collect import load_inputs
from ferxai.explain.shard_files import load_shard

METHOD_AGREEMENT_COLUMNS = ("condition", "method_a", "method_b", "similarity", "mean", "ci_low", "ci_high", "n",
                            "model_a", "model_b", "status", "reason")


def write_method_agreement(inputs_npz: str | os.PathLike, maps: Sequence[tuple[str, str, str]], top_k: float,
                           out_csv: str | os.PathLike, intervals: Mapping[str, Any]) -> list[dict[str, Any]]:
    """For every condition, every pair of methods in `maps` ((condition, method, attributions
    file), in order): per similarity the mean over the images and its interval, with the model
    each method's maps came from (the maps' own record)."""
    ids = load_inputs(inputs_npz)["ids"].tolist()
    loaded: dict[str, list[tuple[str, np.ndarray, str, str]]] = {}
    for condition, method, path in maps:
        values, got, meta = load_shard(path)
        if list(got) != ids:
            raise ValueError(f"{path}: holds maps of other images than {inputs_npz} ({len(got)} for {len(ids)})")
        loaded.setdefault(condition, []).append((method, values, str(meta.get("model", "")), meta.get("failed") or ""))
    rows: list[dict[str, Any]] = []
    for condition, methods in loaded.items():
        for (a, maps_a, model_a, failed_a), (b, maps_b, model_b, failed_b) in combinations(methods, 2):
            reason = "; ".join(f"{m} failed: {f}" for m, f in ((a, failed_a), (b, failed_b)) if f)
            values = {} if reason else similarities(maps_a, maps_b, top_k)
            for name in AGREEMENT_SIMILARITIES:
                estimate = bootstrap_mean(values.get(name, np.array([])), **intervals)
                rows.append({"condition": condition, "method_a": a, "method_b": b, "similarity": name,
                             "mean": estimate.mean, "ci_low": estimate.low, "ci_high": estimate.high,
                             "n": estimate.n, "model_a": model_a, "model_b": model_b,
                             "status": "failed" if reason else "ok", "reason": reason})
    write_table(out_csv, METHOD_AGREEMENT_COLUMNS, [[row[c] for c in METHOD_AGREEMENT_COLUMNS] for row in rows])
    return rows


__all__ = ["METHOD_AGREEMENT_COLUMNS", "write_method_agreement"]
