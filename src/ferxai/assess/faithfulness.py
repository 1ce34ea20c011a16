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


def _blend_scores(model: Callable[[torch.Tensor], torch.Tensor], start: torch.Tensor, end: torch.Tensor,
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
    start, end = (images, _baseline(images, baseline)) if mode == "deletion" else (_baseline(images, baseline), images)
    count_of = counts.repeat(n)
    return _blend_scores(model, start, end, targets, steps + 1,
                         lambda rows, idx: (rank[idx] < count_of[rows, None]).view(-1, 1, h, w), batch_size)


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
    flat_subsets = subsets.view(n * samples, 1, h, w)
    with torch.no_grad():
        original = model(images).gather(1, targets[:, None].long())[:, 0].float()
    perturbed = _blend_scores(model, images, _baseline(images, baseline), targets, samples,
                              lambda rows, idx: flat_subsets[rows], batch_size)
    drops = original[:, None] - perturbed
    a = claimed - claimed.mean(dim=1, keepdim=True)
    b = drops - drops.mean(dim=1, keepdim=True)
    denominator = (a.square().sum(dim=1) * b.square().sum(dim=1)).sqrt()
    correlation = (a * b).sum(dim=1) / denominator
    return torch.where(denominator > 0, correlation, torch.full_like(correlation, float("nan")))


__all__ = ["BASELINES", "area_under", "deletion_auc", "faithfulness_correlation", "insertion_auc", "removal_curves"]
