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
from ferxai.explain.shard_files import load_shard, load_shard_meta

log = logging.getLogger(__name__)

SCORE_COLUMNS = ("method", "condition", "metric", "family", "mean", "ci_low", "ci_high", "n", "direction",
                 "rank", "control", "status", "reason")


def _maps(path: str | os.PathLike, ids: Sequence[str], where: str) -> tuple[np.ndarray, dict[str, Any]]:
    """A method's maps and the file's meta (`meta.get("failed")`: why the method failed, with
    ExplainSettings.on_error)."""
    maps, got, meta = load_shard(path)
    if list(got) != list(ids):
        raise ValueError(f"{where}: {path} holds other images than the explanation inputs "
                         f"({len(got)} maps, {len(ids)} inputs)")
    return maps, meta


def failure_reason(path: str | os.PathLike) -> str | None:
    """Why the method of this attributions file failed, or None."""
    return load_shard_meta(path).get("failed")


def write_map_scores(inputs_npz: str | os.PathLike, attributions: Sequence[tuple[str, str, str]],
                     metrics: Mapping[str, Mapping[str, Any]], root: str) -> None:
    """Every map-only metric in `metrics` (label -> {"metric", "params"}) for every (condition,
    method, attributions.npz) in `attributions`, to root/<condition>/<method>/<label>.csv."""
    inputs = load_inputs(inputs_npz)
    ids, sets = inputs["ids"].tolist(), inputs["sets"].tolist()
    masks, has_mask = inputs.get("masks"), inputs.get("has_mask")
    functions = {label: catalog.load(spec["metric"]) for label, spec in metrics.items()}
    for condition, method, path in attributions:
        maps, meta = _maps(path, ids, f"{condition}/{method}")
        failed = meta.get("failed")
        for label, spec in metrics.items():
            where = f"{root}: method {method!r}, condition {condition!r}, metric {label!r}"
            needs = catalog.get(spec["metric"]).needs
            try:
                if failed:
                    values = np.full(len(ids), np.nan)
                elif "masks" in needs:
                    if masks is None:
                        raise ValueError(f"{inputs_npz} has no ground-truth masks")
                    if masks.shape != maps.shape:
                        raise ValueError(f"maps {maps.shape} do not match the masks {masks.shape} of {inputs_npz}")
                    values = np.where(has_mask, functions[label](maps, masks, **spec["params"]), np.nan)
                else:
                    values = functions[label](maps, **spec["params"])
            except ValueError as err:
                raise ValueError(f"{where}: {err}") from None
            write_per_image(per_image_file(root, condition, method, label), ids, sets, values)
    log.info("%d metrics of %d (condition, method) maps scored", len(metrics), len(attributions))


def gather_shard_scores(shards: Mapping[tuple[str, str], Sequence[str]], labels: Sequence[str], root: str,
                        inputs_npz: str | os.PathLike) -> None:
    """The per-image files of the model-running families from their shard tables: for every
    (condition, method), its shards' rows in selection order, one root/<condition>/<method>/<label>.csv
    per metric label; fails naming a shard whose images are not the selection's."""
    ids = load_inputs(inputs_npz)["ids"].tolist()
    for (condition, method), paths in shards.items():
        rows = [r for path in paths for r in read_table(path)]
        got = [r["id"] for r in rows]
        if got != ids:
            raise ValueError(f"{root}: the score shards of method {method!r}, condition {condition!r} hold "
                             f"{len(got)} images, not the selection's {len(ids)} in order ({', '.join(paths)})")
        sets = [r["set"] for r in rows]
        for label in labels:
            write_per_image(per_image_file(root, condition, method, label), got, sets, column(rows, label))


def write_robustness(inputs_npz: str | os.PathLike, reference: Mapping[str, str],
                     noisy: Sequence[tuple[str, str, str]], top_k: float, root: str) -> None:
    """Per (noise condition, method): agreement of its maps with the same method's maps under the
    reference (first) condition, to root/<condition>/<method>/robustness.csv."""
    from ferxai.assess.similarity import rank_correlation, top_k_iou

    inputs = load_inputs(inputs_npz)
    ids, sets = inputs["ids"].tolist(), inputs["sets"].tolist()
    for condition, method, path in noisy:
        clean, _ = _maps(reference[method], ids, f"reference/{method}")
        maps, _ = _maps(path, ids, f"{condition}/{method}")  # a failed method's NaN maps give NaN
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
                 preflights: Mapping[str, str], attributions: Mapping[tuple[str, str], str],
                 intervals: Mapping[str, Any],
                 scores_csv: str | os.PathLike, reliability_csv: str | os.PathLike,
                 figures: str | os.PathLike, scores_json: str | os.PathLike | None = None,
                 scores_store: str | os.PathLike | None = None, summary_md: str | os.PathLike | None = None) -> None:
    """The scorecard: per (method, condition, metric) the mean over images with its bootstrap
    interval and a tie-aware rank; per (condition, metric) the metric's reliability; figures.
    A method that failed (`attributions`' record, ExplainSettings.on_error) has its rows with
    status "failed" and the reason, and no rank.
    `scores_json`: the means as {condition: {metric: {method: mean}}}, the DVC metric (DVC reads
    metrics from JSON, YAML or TOML, not CSV). `scores_store`: every per-image value as zarr.
    `summary_md`: the first condition's leaderboard and the metrics' reliability as Markdown."""
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

    failures = {key: reason for key, path in attributions.items() if (reason := failure_reason(path))}
    rows, reliability_rows = [], []
    for (condition, metric), values in per_image.items():
        family, direction = meta[metric]
        failed = {m: failures.get((condition, m)) or failures.get((conditions[0], m)) for m in values}
        values = {m: v for m, v in values.items() if not failed[m]}
        found = {m: bootstrap_mean(v, resamples=resamples, level=level, seed=seed) for m, v in values.items()}
        ranks = rank_with_ties(found, direction)
        for m, e in found.items():
            rows.append((m, condition, metric, family, e.mean, e.low, e.high, e.n, direction, ranks.get(m, ""),
                         m in CONTROLS, "ok" if e.n else "no values", ""))
        rows += [(m, condition, metric, family, float("nan"), float("nan"), float("nan"), 0, direction, "",
                  m in CONTROLS, "failed", reason) for m, reason in failed.items() if reason]
        r = reliability(values, direction, seed=seed)
        model_based = [m for m in ranks if m not in CONTROLS]
        # share of model-based methods the edge control (the image's structure, no model) loses to
        edge_beaten = (sum(better(found[m], found["edge"], direction) for m in model_based) / len(model_based)
                       if "edge" in ranks and model_based else float("nan"))
        # share of model-based methods that beat the random control (1: random is last)
        random_beaten = (sum(better(found[m], found["random"], direction) for m in model_based) / len(model_based)
                         if "random" in ranks and model_based else float("nan"))
        reliability_rows.append((metric, condition, family, direction, r.methods,
                                 "" if r.random_last is None else r.random_last, random_beaten,
                                 ranks.get("random", ""), "" if r.edge_rank is None else r.edge_rank, edge_beaten,
                                 r.stability))
    for m in methods:
        record = json.loads(Path(preflights[m]).read_text())
        for metric, value in (("seconds_per_image", record["sec_per_image"]),
                              ("passes_per_image", record["passes_per_image"])):
            reason = record.get("failed") or ""
            rows.append((m, conditions[0], metric, "cost", float(value), float("nan"), float("nan"), 1, "lower", "",
                         m in CONTROLS, "failed" if reason else "ok", reason))
    write_table(scores_csv, SCORE_COLUMNS, rows)
    if scores_store is not None:
        _write_per_image_store(Path(scores_store), root, per_image, meta, failures, methods)
    if scores_json is not None:
        tree: dict[str, dict[str, dict[str, float | None]]] = {}
        for method, condition, metric, _, mean, *_ in rows:
            tree.setdefault(condition, {}).setdefault(metric, {})[method] = None if np.isnan(mean) else round(mean, 6)
        write_text_atomic(scores_json, json.dumps(tree, indent=1, sort_keys=True) + "\n")
    write_table(reliability_csv, ("metric", "condition", "family", "direction", "methods", "random_last",
                                  "random_beaten_by", "random_rank", "edge_rank", "edge_beaten_by", "stability_tau"),
                reliability_rows)
    if summary_md is not None:
        write_text_atomic(summary_md, markdown_summary(scores_csv, reliability_csv, conditions[0]))
    from ferxai.plots.assess import write_assess_figures

    write_assess_figures(scores_csv, curves, figures)
    log.info("scorecard: %d rows, %d metric reliabilities", len(rows), len(reliability_rows))


def write_mask_zoom(inputs_npz: str | os.PathLike, attributions: Mapping[str, str | os.PathLike], root: str,
                    condition: str, metrics: Mapping[str, Mapping[str, Any]], overlay_settings: Mapping[str, Any],
                    out_png: str | os.PathLike) -> None:
    """mask_zoom.png (ferxai.plots.assess.plot_mask_zoom) for the first explained image that has a
    mask and was classified right: every method's map (`attributions`: method -> file, under
    `condition`) whole and zoomed on the mask, each noted with its share of relevance inside the
    mask on that image and, over all images with masks, the mean share and how often its maximum
    is inside (the `relevance_mass` and `pointing_game` metrics among `metrics`, when configured)."""
    from ferxai.explain.pictures import image_titles, overlay_options
    from ferxai.plots.assess import plot_mask_zoom
    from ferxai.plots.evaluation import save_figure

    inputs = load_inputs(inputs_npz)
    ids = inputs["ids"].tolist()
    masks, has_mask = inputs.get("masks"), inputs.get("has_mask")
    if masks is None or has_mask is None or not np.asarray(has_mask).any():
        raise ValueError(f"{inputs_npz}: no explained image has a ground-truth mask")
    has_mask = np.asarray(has_mask, dtype=bool) & np.asarray(masks).reshape(len(ids), -1).any(axis=1)
    right = has_mask & (inputs["labels"] == inputs["predictions"])
    shown = int(np.flatnonzero(right if right.any() else has_mask)[0])
    by_metric = {name: next((label for label, spec in metrics.items() if spec["metric"] == name), None)
                 for name in ("relevance_mass", "pointing_game")}
    maps, signed, notes = {}, {}, {}
    for method, path in attributions.items():
        found, meta = _maps(path, ids, f"{condition}/{method}")
        failed = meta.get("failed")
        signed[method] = bool(meta.get("signed", False))
        if failed:
            maps[method], notes[method] = None, "failed: " + str(failed)[:60]
            continue
        maps[method] = found[shown]
        lines = []
        mass_label, hit_label = by_metric["relevance_mass"], by_metric["pointing_game"]
        if mass_label:
            mass = column(read_table(per_image_file(root, condition, method, mass_label)), "value")
            lines.append(f"mass {mass[shown]:.2f} (mean {np.nanmean(mass):.2f})")
        if hit_label:
            hits = column(read_table(per_image_file(root, condition, method, hit_label)), "value")
            lines.append(f"max inside: {'yes' if hits[shown] >= 0.5 else 'no'} ({np.nanmean(hits):.0%})")
        notes[method] = "\n".join(lines)
    kw, _ = overlay_options(overlay_settings)
    image = inputs["images"][shown].astype(np.float32) / 255.0
    title = (f"{ids[shown]}: {image_titles(inputs)[shown]}; condition {condition}. Below each map: its share of "
             "relevance in the mask here (mean over images), whether its maximum is in the mask here (share of images)")
    save_figure(plot_mask_zoom(image, np.asarray(masks[shown], dtype=bool), maps, signed, notes, title, **kw), out_png)
    log.info("mask zoom of %s: %d methods", ids[shown], len(maps))


def markdown_summary(scores_csv: str | os.PathLike, reliability_csv: str | os.PathLike, condition: str) -> str:
    """The leaderboard of `condition` (mean and tie-aware rank per method and metric, controls
    last and in italics) and every metric's reliability, as Markdown tables."""
    scores = [r for r in read_table(scores_csv) if r["condition"] == condition and r["family"] != "cost"]
    metrics = list(dict.fromkeys(r["metric"] for r in scores))
    methods = list(dict.fromkeys(r["method"] for r in scores))
    methods = [m for m in methods if m not in CONTROLS] + [m for m in methods if m in CONTROLS]
    cell = {(r["method"], r["metric"]): r for r in scores}
    arrow = {"higher": "↑", "lower": "↓"}
    direction = {r["metric"]: r["direction"] for r in scores}

    def shown(r: Mapping[str, str] | None) -> str:
        if r is None:
            return ""
        if r["status"] == "failed":
            return "failed"
        if r["mean"] == "":
            return "–"
        return f"{float(r['mean']):.3g} ({r['rank']})"

    lines = [f"Scores under condition `{condition}`: mean over images (rank; methods whose 95 % bootstrap "
             "intervals overlap share a rank). Controls in italics. Intervals: `scores.csv`.", "",
             "| method | " + " | ".join(f"{m} {arrow.get(direction[m], '')}" for m in metrics) + " |",
             "|---|" + "---|" * len(metrics)]
    for m in methods:
        name = f"*{m}*" if m in CONTROLS else m
        lines.append(f"| {name} | " + " | ".join(shown(cell.get((m, metric))) for metric in metrics) + " |")
    failed = sorted({(r["method"], r["reason"]) for r in scores if r["status"] == "failed"})
    if failed:
        lines += ["", "Failed: " + "; ".join(f"{m} ({reason})" for m, reason in failed)]
    lines += ["", "Reliability of each metric: does it put `random` below every model-based method with "
              "separated intervals, and what share of them beat it; where does it rank `edge` (image "
              "structure, no model) and what share beat that; how stable is its ordering of methods under "
              "bootstrap resampling of images (mean Kendall τ).", "",
              "| metric | condition | random last | methods beating random | random rank | edge rank | "
              "methods beating edge | stability τ |",
              "|---|---|---|---|---|---|---|---|"]

    def share(text: str) -> str:
        return f"{float(text):.0%}" if text else ""

    for r in read_table(reliability_csv):
        tau = f"{float(r['stability_tau']):.2f}" if r["stability_tau"] else ""
        lines.append(f"| {r['metric']} | {r['condition']} | {r['random_last']} | {share(r['random_beaten_by'])} | "
                     f"{r['random_rank']} | {r['edge_rank']} | {share(r['edge_beaten_by'])} | {tau} |")
    return "\n".join(lines) + "\n"


def _write_per_image_store(path: Path, root: str, per_image: Mapping[tuple[str, str], Mapping[str, np.ndarray]],
                           meta: Mapping[str, tuple[str, str]], failures: Mapping[tuple[str, str], str],
                           methods: Sequence[str]) -> None:
    """Every per-image score as zarr beside the experiment's store: scores/<condition>/<metric>
    (sample, method) float64, on the store's sample axis (NaN where an image has no value, e.g.
    outside the randomisation subset); attrs family, direction and failed methods."""
    import shutil

    import zarr

    from ferxai.explain.store import consolidate, create_array, create_strings

    ids = None
    for (condition, metric), values in per_image.items():
        if meta[metric][0] != "randomisation":
            ids = read_table(per_image_file(root, condition, methods[0], metric))
            ids = [r["id"] for r in ids]
            break
    if path.exists():
        shutil.rmtree(path)
    root = zarr.open_group(os.fspath(path), mode="w", zarr_format=3)
    if ids is not None:
        create_strings(root, "ids", ids, ("sample",))
        create_strings(root, "methods", list(methods), ("method",))
    for (condition, metric), values in per_image.items():
        n = len(ids) if ids is not None else max(len(v) for v in values.values())
        table = np.full((n, len(methods)), np.nan)
        for j, m in enumerate(methods):
            v = values.get(m)
            if v is not None:
                table[:len(v), j] = v  # the randomisation subset is the first images of the selection
        family, direction = meta[metric]
        create_array(root.require_group(f"scores/{condition}"), metric, table, ("sample", "method"), per_sample=False,
                attrs={"family": family, "direction": direction,
                       "failed": {m: r for (c, m), r in failures.items() if c == condition}})
    consolidate(path)


__all__ = ["SCORE_COLUMNS", "gather_shard_scores", "write_map_scores", "write_mask_zoom", "write_robustness",
           "write_scores"]
