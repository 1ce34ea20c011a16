"""Batched, on-device data augmentation.

Each batch gets one random affine per image (shift, rotation, scale, flip) applied with a single
`grid_sample`, plus brightness/contrast jitter: a few tensor ops per batch instead of a PIL
round trip per image, which matters on a 2-core CPU and keeps a GPU fed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ferxai.settings import Settings


@dataclass(frozen=True)
class AugmentSettings(Settings):
    section = "train.augment"

    hflip: bool = True
    max_shift: float = 0.05     # fraction of the image side
    max_rotation: float = 10.0  # degrees
    max_scale: float = 0.05     # relative zoom in/out
    brightness: float = 0.15    # additive, in [0, 1] intensity units
    contrast: float = 0.15      # multiplicative around the image mean

    @property
    def geometric(self) -> bool:
        return self.hflip or self.max_shift > 0 or self.max_rotation > 0 or self.max_scale > 0


def augment_batch(x: torch.Tensor, settings: AugmentSettings, generator: torch.Generator) -> torch.Tensor:
    """Augment a float batch (N, C, H, W) with values in [0, 1]; returns a new tensor."""
    n = x.shape[0]

    def uniform(scale: float) -> torch.Tensor:
        return (torch.rand(n, generator=generator) * 2 - 1) * scale

    if settings.geometric:
        angle = uniform(math.radians(settings.max_rotation))
        scale = 1 + uniform(settings.max_scale)
        flip = torch.ones(n)
        if settings.hflip:
            flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
        # affine_grid works in normalised [-1, 1] coordinates, so a shift of s*side is 2*s.
        tx, ty = uniform(2 * settings.max_shift), uniform(2 * settings.max_shift)
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack(
            [torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1
        ).to(x.device, x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if settings.contrast > 0 or settings.brightness > 0:
        c = (1 + uniform(settings.contrast)).to(x.device, x.dtype).view(n, 1, 1, 1)
        b = uniform(settings.brightness).to(x.device, x.dtype).view(n, 1, 1, 1)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = ((x - mean) * c + mean + b).clamp(0, 1)
    return x
