"""Faithfulness correlation (Bhatt et al. 2020), batched."""

from __future__ import annotations

from typing import Callable

import torch

from ferxai.assess.removal import baseline_images, blend_scores


def faithfulness_correlation(model: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, maps: torch.Tensor,
                             targets: torch.Tensor, *, subset: int = 64, samples: int = 50, baseline: str = "black",
                             seed: int = 0, batch_size: int = 64, offset: int = 0) -> torch.Tensor:
    """Faithfulness correlation (Bhatt et al. 2020), (N,): per image, the Pearson correlation over
    `samples` random pixel subsets of size `subset` between the map's sum over the subset (signed:
    a map that claims a pixel lowers the score must be right about it) and the drop of the target
    output when the subset is set to the baseline. 1: the map predicts every drop; about 0: it
    predicts none. Each image's subsets are drawn from a generator seeded by `seed` and its position
    in the selection (`offset`: the first image's), so methods are compared on the same subsets
    however the images are sharded or batched. NaN where either side does not vary."""
    n, _, h, w = images.shape
    if maps.shape != (n, h, w):
        raise ValueError(f"maps {tuple(maps.shape)} must be (N, H, W) = {(n, h, w)} for these images")
    pixels = h * w
    if not 1 <= subset <= pixels or samples < 2:
        raise ValueError(f"subset must be in [1, {pixels}] and samples >= 2, got {subset}, {samples}")
    chosen = torch.stack([torch.rand(samples, pixels, generator=torch.Generator().manual_seed(
        seed * 1_000_003 + offset + i)).argsort(dim=1)[:, :subset] for i in range(n)]) if n else \
        torch.zeros(0, samples, subset, dtype=torch.long)
    subsets = torch.zeros(n, samples, pixels, dtype=torch.bool).scatter_(2, chosen, True).to(images.device)
    claimed = (maps.detach().float().reshape(n, 1, pixels) * subsets).sum(dim=2)          # (N, samples)
    flat_subsets = subsets.view(n * samples, 1, h, w)
    with torch.no_grad():
        original = model(images).gather(1, targets[:, None].long())[:, 0].float()
    perturbed = blend_scores(model, images, baseline_images(images, baseline), targets, samples,
                              lambda rows, idx: flat_subsets[rows], batch_size)
    drops = original[:, None] - perturbed
    a = claimed - claimed.mean(dim=1, keepdim=True)
    b = drops - drops.mean(dim=1, keepdim=True)
    denominator = (a.square().sum(dim=1) * b.square().sum(dim=1)).sqrt()
    correlation = (a * b).sum(dim=1) / denominator
    return torch.where(denominator > 0, correlation, torch.full_like(correlation, float("nan")))
