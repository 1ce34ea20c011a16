"""Pixel-removal curves shared by the faithfulness metrics (deletion, insertion, faithfulness
correlation, ROAD): perturbed copies of many images blended and scored in batches.

For each image the pixels are ranked by |map| (most relevant first, or least relevant first with
``order: least``); at step k of ``steps`` the first k/steps of them are replaced by the baseline
(deletion) or, starting from the baseline, restored (insertion), and the model's output for the
target class is read. The score is the area under that curve over the removed fraction [0, 1]
(trapezoid rule). Deletion, most relevant first: lower is better (a faithful map removes the
evidence first); insertion, most relevant first: higher is better. Ties in |map| are broken by
pixel index, so a map's score does not depend on anything but the map.

All perturbed copies of all images go through the model `batch_size` at a time, built one batch
at a time (memory: one batch plus the images), never an image at a time.
"""

from __future__ import annotations

from typing import Callable

import torch

BASELINES = ("black", "mean")
ORDERS = ("most", "least")
MODES = ("deletion", "insertion")


def baseline_images(images: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "black":
        return torch.zeros_like(images)
    if kind == "mean":  # each image's own per-channel mean
        return images.mean(dim=(2, 3), keepdim=True).expand_as(images)
    raise ValueError(f"baseline must be one of {BASELINES}, got {kind!r}")


def blend_scores(model: Callable[[torch.Tensor], torch.Tensor], start: torch.Tensor, end: torch.Tensor,
                  targets: torch.Tensor, copies: int, changed: Callable[[slice, torch.Tensor], torch.Tensor],
                  batch_size: int) -> torch.Tensor:
    """(N, copies) target outputs of `copies` blends per image: `start` where `changed(rows, images)`
    (B, 1, H, W) is 0, `end` where it is 1; `batch_size` blends per model call, each batch built
    only when it is evaluated."""
    n = start.shape[0]
    total = n * copies
    image_of = torch.arange(total, device=start.device) // copies
    scores = torch.empty(total, device=start.device)
    with torch.no_grad():
        for first in range(0, total, batch_size):
            rows = slice(first, first + batch_size)
            idx = image_of[rows]
            mask = changed(rows, idx).to(start.dtype)
            batch = start[idx] * (1 - mask) + end[idx] * mask
            scores[rows] = model(batch).gather(1, targets[idx, None].long())[:, 0].float()
    return scores.view(n, copies)


def removal_curves(model: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, maps: torch.Tensor,
                   targets: torch.Tensor, *, mode: str = "deletion", order: str = "most", steps: int = 20,
                   baseline: str = "black", batch_size: int = 64) -> torch.Tensor:
    """(N, steps + 1) model output for the target after removing (inserting) 0, 1/steps, ... 1 of
    the pixels. `model` maps a batch (B, C, H, W) to the scores that count, (B, classes)."""
    if mode not in MODES or order not in ORDERS:
        raise ValueError(f"mode must be one of {MODES} and order one of {ORDERS}, got {mode!r}, {order!r}")
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be >= 1, got {steps}, {batch_size}")
    n, _, h, w = images.shape
    if maps.shape != (n, h, w):
        raise ValueError(f"maps {tuple(maps.shape)} must be (N, H, W) = {(n, h, w)} for these images")
    pixels = h * w
    relevance = maps.detach().abs().reshape(n, pixels).float()
    # rank of each pixel in the removal order (0 = first removed); stable sort breaks ties by index
    key = -relevance if order == "most" else relevance
    ranking = torch.argsort(key, dim=1, stable=True)
    rank = torch.empty_like(ranking)
    rank.scatter_(1, ranking, torch.arange(pixels, device=ranking.device).expand(n, pixels))
    counts = torch.round(torch.linspace(0, pixels, steps + 1)).long().to(images.device)
    removed = baseline_images(images, baseline)
    start, end = (images, removed) if mode == "deletion" else (removed, images)
    count_of = counts.repeat(n)
    return blend_scores(model, start, end, targets, steps + 1,
                         lambda rows, idx: (rank[idx] < count_of[rows, None]).view(-1, 1, h, w), batch_size)


def area_under(curves: torch.Tensor) -> torch.Tensor:
    """(N, K + 1) curves on an even grid over [0, 1] -> (N,) trapezoid areas."""
    return ((curves[:, 1:] + curves[:, :-1]) / 2).mean(dim=1)


__all__ = ["BASELINES", "ORDERS", "area_under", "baseline_images", "blend_scores", "removal_curves"]
