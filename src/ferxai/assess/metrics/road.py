"""ROAD, combined (Rong et al. 2022; pytorch-grad-cam's ``ROADCombined``): per image, the mean over
`percentiles` of (LeRF change - MoRF change) / 2, where MoRF imputes the pixels whose |map| is at
or above the map's p-th percentile (the most relevant (100 - p) %) and LeRF those at or below its
(100 - p)-th (the least relevant (100 - p) %), by noisy linear imputation
(ferxai.assess.imputation), and a change is the target output after imputation minus before.
Higher is better: removing what the map calls irrelevant changes little, removing what it calls
relevant drops the output. NaN for a constant map (it orders nothing).

`percentiles` keep pytorch-grad-cam's meaning and default (the threshold percentile, 10 ... 90).
Imputation noise is drawn from a generator seeded by `seed` and the image's position in the
selection (`offset` is the first image's), the same for every map and however the images are sharded.
"""

from __future__ import annotations

import numpy as np
import torch

from ferxai.assess.imputation import impute


def road(model, images: torch.Tensor, maps: torch.Tensor, targets: torch.Tensor, *,
         percentiles: tuple[int, ...] = (10, 20, 30, 40, 50, 60, 70, 80, 90), noise: float = 0.01,
         seed: int = 0, batch_size: int = 64, offset: int = 0) -> torch.Tensor:
    n, _, h, w = images.shape
    if tuple(maps.shape) != (n, h, w):
        raise ValueError(f"maps {tuple(maps.shape)} must be (N, H, W) = {(n, h, w)} for these images")
    relevance = maps.detach().abs().float().cpu().numpy().reshape(n, h * w)
    pixels = images.detach().cpu().numpy()
    constant = relevance.max(axis=1) == relevance.min(axis=1)
    copies = []  # per image: MoRF at every percentile, then LeRF at every percentile
    for i in range(n):
        rng = np.random.default_rng([seed, offset + i])
        for order in (relevance[i], -relevance[i]):
            for p in percentiles:
                removed = order >= np.percentile(order, p)
                if constant[i] or removed.all():
                    copies.append(pixels[i])
                else:
                    copies.append(impute(pixels[i], removed.reshape(h, w), noise, rng))
    batch = torch.from_numpy(np.stack(copies)).to(images)
    per_image = 2 * len(percentiles)
    target_of = targets.long().repeat_interleave(per_image)
    with torch.no_grad():
        before = model(images).gather(1, targets[:, None].long())[:, 0].float()
        after = torch.cat([model(batch[s:s + batch_size]).gather(1, target_of[s:s + batch_size, None])[:, 0].float()
                           for s in range(0, len(batch), batch_size)])
    change = after.view(n, 2, len(percentiles)) - before[:, None, None]
    combined = ((change[:, 1] - change[:, 0]) / 2).mean(dim=1)
    return torch.where(torch.from_numpy(constant).to(combined.device), torch.full_like(combined, float("nan")),
                       combined)
