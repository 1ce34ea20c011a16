"""Pictures of the explanation stage: per-image overlays, per-set galleries, per-image method grids."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ferxai.classes import UNLABELLED, class_name
from ferxai.explain.collect import gather, load_inputs
from ferxai.explain.shard_files import load_shard
from ferxai.plots.attribution import (
    image_to_rgb8,
    overlay,
    plot_conditions,
    plot_gallery,
    plot_method_grid,
    runner_results_text,
    safe_name,
    sample_title,
    save_overlay_png,
    write_runner_layout,
)
from ferxai.plots.evaluation import save_figure

log = logging.getLogger(__name__)


def overlay_options(settings: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    """(keyword arguments of `overlay`, PNG upscaling factor)."""
    kw = {k: settings[k] for k in ("p_low", "p_high", "gamma", "alpha", "patch") if settings.get(k) is not None}
    return kw, int(settings.get("scale", 4))


def image_titles(inputs: Mapping[str, np.ndarray]) -> list[str]:
    names = inputs["class_names"]
    return [sample_title(None if y == UNLABELLED else class_name(names, y), class_name(names, p), float(c))
            for y, p, c in zip(inputs["labels"], inputs["predictions"], inputs["confidence"])]


def write_method_pictures(inputs_npz: str | Path, attributions_npz: str | Path, label: str,
                          settings: Mapping[str, Any], out_dir: str | Path, gallery_png: str | Path) -> None:
    """`out_dir/<id>.png` per image, and one gallery with a row block per selection set."""
    inputs = load_inputs(inputs_npz)
    maps, ids, meta = load_shard(attributions_npz)
    signed = bool(meta.get("signed", False))
    kw, scale = overlay_options(settings)
    images = inputs["images"].astype(np.float32) / 255.0
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if meta.get("failed"):
        save_figure(failure_figure(label, meta["failed"]), gallery_png)
        log.warning("%s failed (%s): no overlays, the gallery says so", label, meta["failed"])
        return
    for image, attribution, image_id in zip(images, maps, ids):
        save_overlay_png(out_dir / f"{safe_name(image_id)}.png", overlay(image, attribution, signed, **kw), scale)
    # Three short lines per panel: set, true class, prediction (one long line overlaps neighbours).
    titles = [s + "\n" + t.replace(", predicted", "\npredicted") for s, t in zip(inputs["sets"], image_titles(inputs))]
    gallery = plot_gallery(images, maps, signed, titles, ncols=6, suptitle=f"{label}" + (" (signed)" if signed else ""),
                       **kw)
    gallery.save(gallery_png)
    log.info("%s: %d overlays, gallery %s", label, len(ids), gallery_png)


def gather_methods(methods: Sequence[str], shards: Sequence[str | Path | Sequence[str | Path]],
                   inputs_npz: str | Path, attributions: Sequence[str | Path], overlays: Sequence[str | Path],
                   galleries: Sequence[str | Path], settings: Mapping[str, Any]) -> None:
    """For each of `methods` in turn (the other arguments: one entry per method, in its order):
    its shards gathered into its attributions file, then its overlays and gallery."""
    counts = {len(shards), len(attributions), len(overlays), len(galleries)}
    if counts != {len(methods)}:
        raise ValueError(f"{len(methods)} methods but {len(shards)} shard lists, {len(attributions)} attribution "
                         f"files, {len(overlays)} overlay folders and {len(galleries)} galleries")
    for label, files, out_npz, out_dir, gallery_png in zip(methods, shards, attributions, overlays, galleries):
        gather([files] if isinstance(files, (str, Path)) else list(files), inputs_npz, out_npz)
        write_method_pictures(inputs_npz, out_npz, label, settings, out_dir, gallery_png)


def failure_figure(label: str, reason: str) -> "Figure":
    """A gallery's stand-in for a method that failed: its name and why."""
    import textwrap

    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 1.6))
    fig.text(0.5, 0.5, f"{label} failed\n" + textwrap.fill(reason, 90), ha="center", va="center", fontsize=8)
    return fig


def write_method_grids(inputs_npz: str | Path, attributions: Mapping[str, str | Path], settings: Mapping[str, Any],
                       out_dir: str | Path, runner_layout: bool = False) -> None:
    """`out_dir/<id>.png`: the input and every method's map; optionally the runner-script layout."""
    inputs = load_inputs(inputs_npz)
    loaded = {label: load_shard(path) for label, path in attributions.items()}
    failed = sorted(label for label, (_, _, meta) in loaded.items() if meta.get("failed"))
    if failed:
        log.warning("left out of the grids, failed: %s", ", ".join(failed))
        loaded = {label: found for label, found in loaded.items() if label not in failed}
    signed = {label: bool(meta.get("signed", False)) for label, (_, _, meta) in loaded.items()}
    families = {label: str(meta.get("family", "")) for label, (_, _, meta) in loaded.items()}
    kw, scale = overlay_options(settings)
    images = inputs["images"].astype(np.float32) / 255.0
    names = list(inputs["class_names"])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for i, (image_id, title) in enumerate(zip(inputs["ids"], image_titles(inputs))):
        maps = {label: maps[i] for label, (maps, _, _) in loaded.items()}
        plot_method_grid(images[i], maps, signed, title, families, **kw).save(out_dir / f"{safe_name(image_id)}.png")
        if runner_layout:
            text = runner_results_text(class_name(names, inputs["labels"][i]), class_name(names, inputs["predictions"][i]),
                                       dict(zip(names, map(float, inputs["probabilities"][i]))), image_id=str(image_id))
            for label, attribution in maps.items():
                write_runner_layout(out_dir / "runner", str(image_id), class_name(names, inputs["labels"][i]), label,
                                    overlay(images[i], attribution, signed[label], **kw), text, scale=scale,
                                    image_rgb=image_to_rgb8(images[i]))


def shown_image(inputs: Mapping[str, np.ndarray]) -> int:
    """Index of the image a one-image figure shows: the first high-confidence one classified
    right, else the first."""
    right = [i for i, (s, y, p) in enumerate(zip(inputs["sets"], inputs["labels"], inputs["predictions"]))
             if "high_confidence" in str(s) and y == p]
    return right[0] if right else 0


def write_condition_grid(inputs_npz: str | Path, attributions: Mapping[tuple[str, str], str | Path],
                         conditions: list[str], methods: list[str], settings: Mapping[str, Any], seed: int,
                         out_png: str | Path) -> None:
    """`out_png`: one explained image (the first high-confidence one classified right, else the
    first) under every noise condition, as the attribution jobs corrupted it (`seed`:
    explain.seed), with every method's map under each; failed maps are left blank."""
    import torch

    from ferxai.explain.noise import apply_noise

    inputs = load_inputs(inputs_npz)
    if not len(inputs["ids"]):
        raise ValueError(f"{inputs_npz}: no explained image")
    index = shown_image(inputs)
    clean = torch.from_numpy(inputs["images"][index:index + 1].astype(np.float32) / 255.0)
    images = {c: apply_noise(clean, c, seed, indices=[index])[0].numpy() for c in conditions}
    maps: dict[str, dict[str, np.ndarray]] = {}
    signed: dict[str, bool] = {}
    for method in methods:
        maps[method] = {}
        for condition in conditions:
            values, _, meta = load_shard(attributions[condition, method])
            signed[method] = bool(meta.get("signed", False))
            if not meta.get("failed"):
                maps[method][condition] = values[index]
    kw, _ = overlay_options(settings)
    title = f"{inputs['ids'][index]}: {image_titles(inputs)[index]}, under each noise condition"
    plot_conditions(images, maps, signed, title, **kw).save(out_png)
