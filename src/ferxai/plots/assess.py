"""Figures of the scoring stage, read at a glance:

* leaderboard.png: method x metric, cells coloured by tie-aware rank within the metric (1 = best,
  dark), the mean printed; each metric's label says which way is better; controls in grey italics
  below a rule;
* sanity_checks.png: per method, the rank correlation of its maps with the trained model's as ever
  more layers are randomised (output layer first): a method that explains the model falls;
* faithfulness_vs_cost.png: each faithfulness metric's mean against seconds per image;
* robustness.png: per noise condition, each method's rank correlation with its clean maps;
* mask_zoom.png (datasets with ground-truth masks): one image, every method's map over it and,
  below, the map zoomed on the mask's region with the mask outlined, with the method's share of
  relevance inside the mask and whether its maximum lies there.
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from ferxai.plots.evaluation import save_figure

ARROW = {"higher": "↑", "lower": "↓"}


def _rows(scores_csv: str | os.PathLike) -> list[dict[str, str]]:
    with open(scores_csv, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _value(text: str) -> float:
    return float(text) if text not in ("", None) else float("nan")


def _method_order(rows: Sequence[Mapping[str, str]]) -> list[str]:
    methods = list(dict.fromkeys(r["method"] for r in rows))
    controls = [m for m in methods if any(r["method"] == m and r["control"] == "True" for r in rows)]
    return [m for m in methods if m not in controls] + controls, controls


def plot_leaderboard(rows: Sequence[Mapping[str, str]], condition: str) -> Figure:
    chosen = [r for r in rows if r["condition"] == condition and r["family"] not in ("cost", "robustness")]
    metrics = list(dict.fromkeys(r["metric"] for r in chosen))
    methods, controls = _method_order(chosen)
    rank = np.full((len(methods), len(metrics)), np.nan)
    mean = np.full_like(rank, np.nan)
    direction = {}
    for r in chosen:
        i, j = methods.index(r["method"]), metrics.index(r["metric"])
        rank[i, j], mean[i, j] = _value(r["rank"]), _value(r["mean"])
        direction[r["metric"]] = r["direction"]
    # rank as a share of the column's worst rank, so every metric spans the same colours
    worst = np.nanmax(rank, axis=0, initial=1.0)
    shade = (rank - 1) / np.maximum(worst - 1, 1)
    fig = Figure(figsize=(1.0 + 0.85 * max(len(metrics), 1), 1.2 + 0.32 * len(methods)))
    ax = fig.add_subplot()
    ax.imshow(1 - shade, cmap="Greens", vmin=-0.2, vmax=1.2, aspect="auto")
    for i in range(len(methods)):
        for j in range(len(metrics)):
            if np.isfinite(mean[i, j]):
                ax.text(j, i, f"{mean[i, j]:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if shade[i, j] < 0.35 else "black")
            else:
                ax.text(j, i, "–", ha="center", va="center", fontsize=6, color="grey")
    ax.set_xticks(range(len(metrics)))
    ax.set_xticklabels([f"{m} {ARROW.get(direction.get(m), '')}" for m in metrics], rotation=45, ha="right",
                       rotation_mode="anchor", fontsize=7)
    ax.set_yticks(range(len(methods)))
    ax.set_yticklabels(methods, fontsize=7)
    for label in ax.get_yticklabels():
        if label.get_text() in controls:
            label.set_color("grey")
            label.set_style("italic")
    if controls and len(controls) < len(methods):
        ax.axhline(len(methods) - len(controls) - 0.5, color="black", linewidth=1)
    ax.set_title(f"explanation scores, {condition} (colour: rank within metric, ties share a rank; "
                 "arrow: better direction)", fontsize=8)
    fig.tight_layout()
    return fig


# drawn in colour when present (the methods Adebayo et al. 2018 discuss); every other method thin grey
HIGHLIGHTED = ("saliency", "integrated_gradients", "guided_backprop", "deconvolution", "gradcam", "lrp")


def plot_sanity_checks(curves: Mapping[str, Sequence[Mapping[str, str]]], similarity: str = "rank_correlation") -> Figure:
    fig = Figure(figsize=(9.0, 4.5))
    ax = fig.add_subplot()
    layers: list[str] = []
    low = 0.0
    control_shown = False
    for method, rows in curves.items():
        by_step: dict[int, list[float]] = defaultdict(list)
        for r in rows:
            by_step[int(r["step"])].append(_value(r[similarity]))
            if r["layer"] not in layers:
                layers.append(r["layer"])
        steps = sorted(by_step)
        values = [np.nanmean(by_step[s]) if np.isfinite(by_step[s]).any() else np.nan for s in steps]
        low = min([low, *[v for v in values if np.isfinite(v)]])
        if method in ("random", "edge", "center"):
            style = {"linestyle": "--", "linewidth": 1.2, "color": "black",
                     "label": None if control_shown else "controls (random, edge, center)"}
            control_shown = True
        elif method in HIGHLIGHTED:
            style = {"linewidth": 1.6, "marker": "o", "markersize": 3, "label": method}
        else:
            style = {"linewidth": 0.6, "color": "0.7", "label": None}
        ax.plot(steps, values, **style)
    ax.plot([], [], linewidth=0.6, color="0.7", label="other methods")
    ax.set_xticks(range(1, len(layers) + 1))
    ax.set_xticklabels(layers, rotation=45, ha="right", rotation_mode="anchor", fontsize=6)
    ax.set_xlabel("randomised down to layer (cascading, output layer first)")
    ax.set_ylabel(f"{similarity.replace('_', ' ')} with the trained model's maps")
    ax.set_ylim(min(-0.2, low - 0.05), 1.05)
    ax.axhline(0, color="grey", linewidth=0.5)
    ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set_title("model-randomisation sanity check: a method that explains the model falls; "
                 "the controls ignore it", fontsize=8)
    fig.tight_layout()
    return fig


def plot_faithfulness_vs_cost(rows: Sequence[Mapping[str, str]], condition: str) -> Figure:
    cost = {r["method"]: _value(r["mean"]) for r in rows if r["metric"] == "seconds_per_image"}
    chosen = [r for r in rows if r["family"] == "faithfulness" and r["condition"] == condition]
    metrics = list(dict.fromkeys(r["metric"] for r in chosen)) or ["(no faithfulness metric)"]
    cols = min(3, len(metrics))
    fig = Figure(figsize=(4.0 * cols, 3.4 * int(np.ceil(len(metrics) / cols))))
    for k, metric in enumerate(metrics):
        ax = fig.add_subplot(int(np.ceil(len(metrics) / cols)), cols, k + 1)
        for r in (r for r in chosen if r["metric"] == metric):
            x, y = cost.get(r["method"], np.nan), _value(r["mean"])
            if not (np.isfinite(x) and np.isfinite(y)):
                continue
            control = r["control"] == "True"
            ax.errorbar(x, y, yerr=[[y - _value(r["ci_low"])], [_value(r["ci_high"]) - y]], fmt="s" if control else "o",
                        color="grey" if control else "tab:blue", markersize=3, elinewidth=0.6)
            ax.annotate(r["method"], (x, y), fontsize=5, xytext=(2, 2), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("seconds per image (log)", fontsize=7)
        direction = next((r["direction"] for r in chosen if r["metric"] == metric), "")
        ax.set_ylabel(f"{metric} {ARROW.get(direction, '')}", fontsize=7)
        ax.tick_params(labelsize=6)
    fig.suptitle(f"faithfulness against cost, {condition} (squares: controls)", fontsize=8)
    fig.tight_layout()
    return fig


def _grouped_bars(ax, methods: Sequence[str], series: Sequence[tuple[str, Mapping[str, Mapping[str, str]]]]) -> None:
    """One bar per method for each (label, {method: score row}) of `series`, side by side, with the
    rows' intervals as error bars; a method without a row (or without a value) gets no bar."""
    width = 0.8 / max(1, len(series))
    for k, (label, got) in enumerate(series):
        means = np.array([_value(got[m]["mean"]) if m in got else np.nan for m in methods])
        low = np.array([_value(got[m]["ci_low"]) if m in got else np.nan for m in methods])
        high = np.array([_value(got[m]["ci_high"]) if m in got else np.nan for m in methods])
        ax.bar(np.arange(len(methods)) + k * width, np.nan_to_num(means), width,
               yerr=np.nan_to_num(np.stack([means - low, high - means])), label=label,
               error_kw={"elinewidth": 0.6})
    ax.set_xticks(np.arange(len(methods)) + width * (len(series) - 1) / 2)
    ax.set_xticklabels(methods, rotation=60, ha="right", rotation_mode="anchor", fontsize=6)


def plot_robustness(rows: Sequence[Mapping[str, str]]) -> Figure:
    chosen = [r for r in rows if r["metric"] == "robustness_rank_correlation"]
    conditions = list(dict.fromkeys(r["condition"] for r in chosen))
    methods, _ = _method_order(chosen)
    fig = Figure(figsize=(max(6.0, 0.3 * len(methods) * max(1, len(conditions))), 3.8))
    ax = fig.add_subplot()
    _grouped_bars(ax, methods, [(c, {r["method"]: r for r in chosen if r["condition"] == c}) for c in conditions])
    ax.set_ylabel("rank correlation with the clean maps ↑")
    ax.legend(fontsize=6)
    ax.set_title("robustness of each method's maps to input noise", fontsize=8)
    fig.tight_layout()
    return fig


def plot_agreement(rows: Sequence[Mapping[str, str]], title: str, ylabel: str) -> Figure:
    """Per method (rows in file order, first condition), each similarity's mean with its interval:
    the agreement summary of ferxai.assess.agreement. Failed methods show no bar."""
    condition = rows[0]["condition"] if rows else ""
    chosen = [r for r in rows if r["condition"] == condition]
    methods = list(dict.fromkeys(r["method"] for r in chosen))
    names = list(dict.fromkeys(r["similarity"] for r in chosen))
    fig = Figure(figsize=(max(6.0, 0.3 * len(methods) * max(1, len(names))), 3.8))
    ax = fig.add_subplot()
    _grouped_bars(ax, methods, [(n.replace("_", " "), {r["method"]: r for r in chosen if r["similarity"] == n})
                                for n in names])
    ax.set_ylabel(ylabel)
    ax.axhline(0.0, color="black", linewidth=0.5)
    ax.legend(fontsize=6)
    ax.set_title(f"{title} ({condition})", fontsize=8)
    fig.tight_layout()
    return fig


def plot_method_agreement(rows: Sequence[Mapping[str, str]], title: str,
                          similarity: str = "rank_correlation") -> Figure:
    """Methods against methods: the mean `similarity` of each pair's maps (first condition), one
    cell per pair, written in the cell; a failed pair is blank. Rows of
    ferxai.assess.method_agreement."""
    condition = rows[0]["condition"] if rows else ""
    chosen = [r for r in rows if r["condition"] == condition and r["similarity"] == similarity]
    methods = list(dict.fromkeys([r["method_a"] for r in chosen] + [r["method_b"] for r in chosen]))
    index = {m: i for i, m in enumerate(methods)}
    matrix = np.full((len(methods), len(methods)), np.nan)
    np.fill_diagonal(matrix, 1.0)
    for r in chosen:
        if r["status"] == "ok" and r["mean"] not in ("", "nan"):
            i, j = index[r["method_a"]], index[r["method_b"]]
            matrix[i, j] = matrix[j, i] = float(r["mean"])
    side = max(4.0, 0.42 * len(methods) + 2.0)
    fig = Figure(figsize=(side + 1.0, side))
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="viridis", vmin=-1 if np.nanmin(matrix, initial=0) < 0 else 0, vmax=1)
    ax.set_xticks(range(len(methods)), methods, rotation=90, fontsize=7)
    ax.set_yticks(range(len(methods)), methods, fontsize=7)
    if len(methods) <= 16:
        for (i, j), value in np.ndenumerate(matrix):
            if i != j and np.isfinite(value):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6,
                        color="black" if value > 0.5 else "white")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label=f"mean {similarity.replace('_', ' ')}")
    off = matrix[~np.eye(len(methods), dtype=bool)]
    mean = f"; mean over pairs {np.nanmean(off):.2f}" if np.isfinite(off).any() else ""
    ax.set_title(f"{title} ({condition}{mean})", fontsize=8)
    fig.tight_layout()
    return fig


def mask_window(mask: np.ndarray, margin: int | None = None) -> tuple[slice, slice]:
    """Rows and columns of the mask's bounding box grown by `margin` pixels (default: half the
    box's longer side, at least 2) on every side, inside the image."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2 or not mask.any():
        raise ValueError(f"need a non-empty (H, W) mask, got shape {mask.shape} with {int(mask.sum())} pixels")
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if margin is None:
        margin = max(2, (max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1) // 2)
    h, w = mask.shape
    return (slice(max(0, rows[0] - margin), min(h, rows[-1] + 1 + margin)),
            slice(max(0, cols[0] - margin), min(w, cols[-1] + 1 + margin)))


def plot_mask_zoom(image: np.ndarray, mask: np.ndarray, maps: Mapping[str, np.ndarray | None],
                   signed: Mapping[str, bool], notes: Mapping[str, str], title: str, columns: int = 8,
                   **overlay_kw) -> Figure:
    """Per method (in `maps` order; None: failed, its note says why) a cell of two panels: its
    map over the whole image, and below it the mask's window (`mask_window`) enlarged, the mask
    outlined in white. The first cell is the input and the mask. `notes[method]` goes under it."""
    import textwrap

    from ferxai.plots.attribution import image_to_rgb8, overlay

    window = mask_window(mask)
    cells = [("input", None)] + list(maps.items())
    block_rows = -(-len(cells) // columns)
    height = 4.0 * block_rows + 0.9
    fig = Figure(figsize=(1.9 * columns, height))
    grid = fig.add_gridspec(2 * block_rows, columns, hspace=0.55, wspace=0.15, left=0.02, right=0.98,
                            bottom=0.4 / height, top=1 - 0.9 / height)
    for k, (method, attribution) in enumerate(cells):
        r, c = divmod(k, columns)
        full, zoom = fig.add_subplot(grid[2 * r, c]), fig.add_subplot(grid[2 * r + 1, c])
        if method == "input":
            rgb = image_to_rgb8(image)
            full.set_title("input", fontsize=7.5)
        elif attribution is None:
            rgb = None
            full.set_title(method, fontsize=7.5)
        else:
            rgb = overlay(image, attribution, bool(signed.get(method, False)), **overlay_kw)
            full.set_title(method + (" (±)" if signed.get(method) else ""), fontsize=7.5)
        for ax, box in ((full, (slice(None), slice(None))), (zoom, window)):
            ax.set_xticks([])
            ax.set_yticks([])
            if rgb is None:
                ax.text(0.5, 0.5, "failed", ha="center", va="center", fontsize=8, transform=ax.transAxes)
                continue
            ax.imshow(rgb[box], interpolation="nearest")
            ax.contour(np.asarray(mask, dtype=float)[box], levels=[0.5], colors="white", linewidths=0.9)
        if method == "input":
            zoom.set_xlabel("mask (zoomed)", fontsize=7)
        elif notes.get(method):
            zoom.set_xlabel(notes[method], fontsize=6.5)
    fig.suptitle(textwrap.fill(title, 20 * columns), fontsize=9)
    return fig


def write_assess_figures(scores_csv: str | os.PathLike, curves: Mapping[str, Sequence[Mapping[str, str]]],
                         out_dir: str | os.PathLike) -> list[Path]:
    rows = _rows(scores_csv)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    conditions = list(dict.fromkeys(r["condition"] for r in rows if r["family"] != "robustness"))
    written = [save_figure(plot_leaderboard(rows, conditions[0]), out / "leaderboard.png")] if conditions else []
    if curves:
        written.append(save_figure(plot_sanity_checks(curves), out / "sanity_checks.png"))
    if conditions:
        written.append(save_figure(plot_faithfulness_vs_cost(rows, conditions[0]), out / "faithfulness_vs_cost.png"))
    if any(r["family"] == "robustness" for r in rows):
        written.append(save_figure(plot_robustness(rows), out / "robustness.png"))
    return written


__all__ = ["mask_window", "plot_faithfulness_vs_cost", "plot_leaderboard", "plot_mask_zoom", "plot_method_agreement",
           "plot_robustness",
           "plot_sanity_checks", "write_assess_figures"]
