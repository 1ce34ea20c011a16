"""Insertion (Petsiuk et al. 2018): area under the target output as the most (or least) relevant
pixels are restored into the baseline image, step by step. Most relevant first, higher is better."""

from __future__ import annotations

import torch

from ferxai.assess.removal import area_under, removal_curves


def insertion(model, images: torch.Tensor, maps: torch.Tensor, targets: torch.Tensor, *, offset: int = 0,
              **kwargs) -> torch.Tensor:
    """`offset` (the first image's position in the selection) is unused: nothing here is random."""
    return area_under(removal_curves(model, images, maps, targets, mode="insertion", **kwargs))
