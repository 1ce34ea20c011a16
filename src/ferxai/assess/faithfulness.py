"""Faithfulness by pixel removal: deletion and insertion curves (Petsiuk et al. 2018) and
faithfulness correlation (Bhatt et al. 2020), batched.

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


def _baseline(images: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "black":
        return torch.zeros_like(images)
    if kind == "mean":  # each image's own per-channel mean
        return images.mean(dim=(2, 3), keepdim=True).expand_as(images)
    raise ValueError(f"baseline must be one of {BASELINES}, got {kind!r}")


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
    start, end = (images, _baseline(images, baseline)) if mode == "deletion" else (_baseline(images, baseline), images)
    total = n * (steps + 1)
    image_of = torch.arange(total, device=images.device) // (steps + 1)
    count_of = counts.repeat(n)
    curves = torch.empty(total, device=images.device)
    with torch.no_grad():
        for first in range(0, total, batch_size):
            rows = slice(first, first + batch_size)
            idx = image_of[rows]
            changed = (rank[idx] < count_of[rows, None]).view(-1, 1, h, w).to(images.dtype)
            batch = start[idx] * (1 - changed) + end[idx] * changed
            curves[rows] = model(batch).gather(1, targets[idx, None].long())[:, 0].float()
    return curves.view(n, steps + 1)


def area_under(curves: torch.Tensor) -> torch.Tensor:
    """(N, K + 1) curves on an even grid over [0, 1] -> (N,) trapezoid areas."""
    return ((curves[:, 1:] + curves[:, :-1]) / 2).mean(dim=1)


def deletion_auc(model, images, maps, targets, **kwargs) -> torch.Tensor:
    return area_under(removal_curves(model, images, maps, targets, mode="deletion", **kwargs))


def insertion_auc(model, images, maps, targets, **kwargs) -> torch.Tensor:
    return area_under(removal_curves(model, images, maps, targets, mode="insertion", **kwargs))


def faithfulness_correlation(model: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, maps: torch.Tensor,
                             targets: torch.Tensor, *, subset: int = 64, samples: int = 50, baseline: str = "black",
                             seed: int = 0, batch_size: int = 64) -> torch.Tensor:
    """Faithfulness correlation (Bhatt et al. 2020), (N,): per image, the Pearson correlation over
    `samples` random pixel subsets of size `subset` between the map's sum over the subset (signed:
    a map that claims a pixel lowers the score must be right about it) and the drop of the target
    output when the subset is set to the baseline. 1: the map predicts every drop; about 0: it
    predicts none. Subsets are drawn from a generator seeded by `seed` (the same for every map, so
    methods are compared on the same subsets). NaN where either side does not vary."""
    n, _, h, w = images.shape
    if maps.shape != (n, h, w):
        raise ValueError(f"maps {tuple(maps.shape)} must be (N, H, W) = {(n, h, w)} for these images")
    pixels = h * w
    if not 1 <= subset <= pixels or samples < 2:
        raise ValueError(f"subset must be in [1, {pixels}] and samples >= 2, got {subset}, {samples}")
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.rand(n, samples, pixels, generator=generator).argsort(dim=2)[..., :subset]
    subsets = torch.zeros(n, samples, pixels, dtype=torch.bool).scatter_(2, chosen, True).to(images.device)
    claimed = (maps.detach().float().reshape(n, 1, pixels) * subsets).sum(dim=2)          # (N, samples)
    fill = _baseline(images, baseline)
    total = n * samples
    image_of = torch.arange(total, device=images.device) // samples
    flat_subsets = subsets.view(total, 1, h, w).to(images.dtype)
    with torch.no_grad():
        original = model(images).gather(1, targets[:, None].long())[:, 0].float()
        perturbed = torch.empty(total, device=images.device)
        for first in range(0, total, batch_size):
            rows = slice(first, first + batch_size)
            idx = image_of[rows]
            batch = images[idx] * (1 - flat_subsets[rows]) + fill[idx] * flat_subsets[rows]
            perturbed[rows] = model(batch).gather(1, targets[idx, None].long())[:, 0].float()
    drops = original[:, None] - perturbed.view(n, samples)
    a = claimed - claimed.mean(dim=1, keepdim=True)
    b = drops - drops.mean(dim=1, keepdim=True)
    denominator = (a.square().sum(dim=1) * b.square().sum(dim=1)).sqrt()
    correlation = (a * b).sum(dim=1) / denominator
    return torch.where(denominator > 0, correlation, torch.full_like(correlation, float("nan")))


__all__ = ["BASELINES", "area_under", "deletion_auc", "faithfulness_correlation", "insertion_auc", "removal_curves"]
