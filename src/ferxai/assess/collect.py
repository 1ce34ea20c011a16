"""The torch-free jobs of the scoring stage: the map-only metric families, robustness, and the
experiment's scorecard (scores.csv, metric_reliability.csv, figures).

Map-only metrics (localisation, complexity) take milliseconds per method, so one job per
experiment and family scores every (condition, method): per-method processes would spend nearly
all their time starting Python. Changing one such metric's settings reruns that family's job and
the scorecard; the model-running families have jobs per (condition, method) in
`ferxai.assess.pipeline`.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ferxai.assess import catalog
from ferxai.assess.leaderboard import CONTROLS
from ferxai.assess.files import (RANDOMISATION, ROBUSTNESS, ROBUSTNESS_SIMILARITIES, SIMILARITIES, column,
                                 per_image_file, read_table, write_per_image, write_table)
from ferxai.atomic import write_text_atomic
from ferxai.explain.collect import load_inputs
from ferxai.explain.shard_files import load_shard

log = logging.getLogger(__name__)

SCORE_COLUMNS = ("method", "condition", "metric", "family", "mean", "ci_low", "ci_high", "n", "direction",
                 "rank", "control", "status", "reason")


def _maps(path: str | os.PathLike, ids: Sequence[str], where: str) -> np.ndarray:
    maps, got, _ = load_shard(path)
    if list(got) != list(ids):
        raise ValueError(f"{where}: {path} holds other images than the explanation inputs "
                         f"({len(got)} maps, {len(ids)} inputs)")
    return maps


def write_map_scores(inputs_npz: str | os.PathLike, attributions: Sequence[tuple[str, str, str]],
                     metrics: Mapping[str, Mapping[str, Any]], root: str) -> None:
    """Every map-only metric in `metrics` (label -> {"metric", "params"}) for every (condition,
    method, attributions.npz) in `attributions`, to root/<condition>/<method>/<label>.csv."""
    inputs = load_inputs(inputs_npz)
    ids, sets = inputs["ids"].tolist(), inputs["sets"].tolist()
    masks, has_mask = inputs.get("masks"), inputs.get("has_mask")
    functions = {label: catalog.load(spec["metric"]) for label, spec in metrics.items()}
    for condition, method, path in attributions:
        maps = _maps(path, ids, f"{condition}/{method}")
        for label, spec in metrics.items():
            where = f"method {method!r}, condition {condition!r}, metric {label!r}"
            needs = catalog.get(spec["metric"]).needs
            try:
                if "masks" in needs:
                    if masks is None or masks.shape != maps.shape:
                        raise ValueError(f"{inputs_npz} has no masks of the maps' shape {maps.shape}")
                    values = np.where(has_mask, functions[label](maps, masks, **spec["params"]), np.nan)
                else:
                    values = functions[label](maps, **spec["params"])
            except ValueError as err:
                raise ValueError(f"{where}: {err}") from None
            write_per_image(per_image_file(root, condition, method, label), ids, sets, values)
    log.info("%d metrics of %d (condition, method) maps scored", len(metrics), len(attributions))


def write_robustness(inputs_npz: str | os.PathLike, reference: Mapping[str, str],
                     noisy: Sequence[tuple[str, str, str]], top_k: float, root: str) -> None:
    """Per (noise condition, method): agreement of its maps with the same method's maps under the
    reference (first) condition, to root/<condition>/<method>/robustness.csv."""
    from ferxai.assess.similarity import rank_correlation, top_k_iou

    inputs = load_inputs(inputs_npz)
    ids, sets = inputs["ids"].tolist(), inputs["sets"].tolist()
    for condition, method, path in noisy:
        clean = _maps(reference[method], ids, f"reference/{method}")
        maps = _maps(path, ids, f"{condition}/{method}")
        values = {"rank_correlation": rank_correlation(clean, maps), "top_k_iou": top_k_iou(clean, maps, top_k)}
        write_table(per_image_file(root, condition, method, ROBUSTNESS), ("id", "set", *ROBUSTNESS_SIMILARITIES),
                    [(i, s, *(float(values[k][n]) for k in ROBUSTNESS_SIMILARITIES))
                     for n, (i, s) in enumerate(zip(ids, sets))])


def _randomisation_per_image(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], list[dict[str, str]]]:
    """Per similarity, each image's mean over the cascade's steps (the area under its curve), and
    the raw rows (for the curves)."""
    rows = read_table(path)
    ids = list(dict.fromkeys(r["id"] for r in rows))
    out = {}
    for name in SIMILARITIES:
        values = column(rows, name)
        by_image = {i: [] for i in ids}
        for r, v in zip(rows, values):
            by_image[r["id"]].append(v)
        with np.errstate(all="ignore"):
            out[name] = np.array([np.nanmean(v) if np.isfinite(v).any() else np.nan for v in by_image.values()])
    return out, rows


def write_scores(root: str, methods: Sequence[str], conditions: Sequence[str],
                 metrics: Mapping[str, Mapping[str, Any]], randomisation: bool,
                 preflights: Mapping[str, str], intervals: Mapping[str, Any],
                 scores_csv: str | os.PathLike, reliability_csv: str | os.PathLike,
                 figures: str | os.PathLike, scores_json: str | os.PathLike | None = None) -> None:
    """The scorecard: per (method, condition, metric) the mean over images with its bootstrap
    interval and a tie-aware rank; per (condition, metric) the metric's reliability; figures.
    `scores_json`: the means as {condition: {metric: {method: mean}}}, the DVC metric (DVC reads
    metrics from JSON, YAML or TOML, not CSV)."""
    from ferxai.assess.intervals import bootstrap_mean
    from ferxai.assess.leaderboard import better, rank_with_ties, reliability

    resamples, level, seed = int(intervals["resamples"]), float(intervals["level"]), int(intervals["seed"])
    per_image: dict[tuple[str, str], dict[str, np.ndarray]] = {}   # (condition, metric) -> method -> values
    meta: dict[str, tuple[str, str]] = {}                          # metric -> (family, direction)
    curves: dict[str, list[dict[str, str]]] = {}
    for label, spec in metrics.items():
        meta[label] = (spec["family"], spec["direction"])
        for condition in conditions:
            per_image[condition, label] = {
                m: column(read_table(per_image_file(root, condition, m, label)), "value") for m in methods}
    if randomisation:
        for name in SIMILARITIES:
            meta[f"randomisation_{name}"] = ("randomisation", "lower")
        for m in methods:
            values, rows = _randomisation_per_image(per_image_file(root, conditions[0], m, RANDOMISATION))
            curves[m] = rows
            for name in SIMILARITIES:
                per_image.setdefault((conditions[0], f"randomisation_{name}"), {})[m] = values[name]
    for condition in conditions[1:]:
        for name in ROBUSTNESS_SIMILARITIES:
            meta[f"robustness_{name}"] = ("robustness", "higher")
            per_image[condition, f"robustness_{name}"] = {
                m: column(read_table(per_image_file(root, condition, m, ROBUSTNESS)), name) for m in methods}

    rows, reliability_rows = [], []
    for (condition, metric), values in per_image.items():
        family, direction = meta[metric]
        found = {m: bootstrap_mean(v, resamples=resamples, level=level, seed=seed) for m, v in values.items()}
        ranks = rank_with_ties(found, direction)
        for m, e in found.items():
            rows.append((m, condition, metric, family, e.mean, e.low, e.high, e.n, direction, ranks.get(m, ""),
                         m in CONTROLS, "ok" if e.n else "no values", ""))
        r = reliability(values, direction, seed=seed)
        model_based = [m for m in ranks if m not in CONTROLS]
        # share of model-based methods the edge control (the image's structure, no model) loses to
        edge_beaten = (sum(better(found[m], found["edge"], direction) for m in model_based) / len(model_based)
                       if "edge" in ranks and model_based else float("nan"))
        reliability_rows.append((metric, condition, family, direction, r.methods,
                                 "" if r.random_last is None else r.random_last, ranks.get("random", ""),
                                 "" if r.edge_rank is None else r.edge_rank, edge_beaten, r.stability))
    for m in methods:
        record = json.loads(Path(preflights[m]).read_text())
        for metric, value in (("seconds_per_image", record["sec_per_image"]),
                              ("passes_per_image", record["passes_per_image"])):
            rows.append((m, conditions[0], metric, "cost", float(value), float("nan"), float("nan"), 1, "lower", "",
                         m in CONTROLS, "ok", ""))
    write_table(scores_csv, SCORE_COLUMNS, rows)
    if scores_json is not None:
        tree: dict[str, dict[str, dict[str, float | None]]] = {}
        for method, condition, metric, _, mean, *_ in rows:
            tree.setdefault(condition, {}).setdefault(metric, {})[method] = None if np.isnan(mean) else round(mean, 6)
        write_text_atomic(scores_json, json.dumps(tree, indent=1, sort_keys=True) + "\n")
    write_table(reliability_csv, ("metric", "condition", "family", "direction", "methods", "random_last",
                                  "random_rank", "edge_rank", "edge_beaten_by", "stability_tau"), reliability_rows)
    from ferxai.plots.assess import write_assess_figures

    write_assess_figures(scores_csv, curves, figures)
    log.info("scorecard: %d rows, %d metric reliabilities", len(rows), len(reliability_rows))


__all__ = ["SCORE_COLUMNS", "write_map_scores", "write_robustness", "write_scores"]
