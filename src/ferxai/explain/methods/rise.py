"""RISE (Petsiuk et al. 2018): randomised input sampling for explanation of black-box models.

Masks as in the paper (Section 3.2): a binary s x s grid with cells on with probability p,
bilinearly upsampled to (s + 1) * ceil(side / s), then cropped to the image at a random shift
of up to one cell, so mask edges fall anywhere. Saliency S = sum_i f(x * M_i) M_i / (N * p).
The masks are drawn once per explainer and image size (seeded) and shared by all images; the
masked inputs of all images x masks are evaluated `batch_size` at a time.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ferxai.explain.methods._perturb import PerturbationExplainer, masked_scores


def rise_masks(n: int, s: int, p: float, h: int, w: int, seed: int) -> torch.Tensor:
    """(n, 1, H, W) float RISE masks in [0, 1], reproducible from `seed` (on the CPU)."""
    gen = torch.Generator().manual_seed(seed)
    cell_h, cell_w = math.ceil(h / s), math.ceil(w / s)
    grid = (torch.rand(n, 1, s, s, generator=gen) < p).float()
    up = F.interpolate(grid, size=((s + 1) * cell_h, (s + 1) * cell_w), mode="bilinear", align_corners=False)
    dy = torch.randint(0, cell_h, (n,), generator=gen)
    dx = torch.randint(0, cell_w, (n,), generator=gen)
    rows = (dy[:, None] + torch.arange(h)[None, :])  # (n, H)
    cols = (dx[:, None] + torch.arange(w)[None, :])  # (n, W)
    up = up[:, 0]
    out = up[torch.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
    return out.clamp(0, 1).unsqueeze(1).contiguous()


class Rise(PerturbationExplainer):
    """Parameters: ``n_masks`` (N), ``mask_size`` (s, grid cells per side), ``p`` (keep
    probability of a cell), ``seed``. Masked pixels become 0 (x * M, as in the paper)."""

    name = "rise"

    def validate(self) -> None:
        self._masks: dict[tuple, torch.Tensor] = {}

    def masks(self, h: int, w: int, device: torch.device) -> torch.Tensor:
        key = (h, w, str(device))
        if key not in self._masks:
            p = self.params
            self._masks[key] = rise_masks(p["n_masks"], p["mask_size"], p["p"], h, w, p["seed"]).to(device)
        return self._masks[key]

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        n, _, h, w = inputs.shape
        masks = self.masks(h, w, inputs.device).to(inputs.dtype)
        zero = torch.zeros(n, inputs.shape[1], 1, 1, dtype=inputs.dtype, device=inputs.device)
        scores = masked_scores(self.forward_model, inputs, targets, len(masks), masks, zero, self.batch_size)
        sal = scores @ masks.view(len(masks), -1).float()
        return (sal / (len(masks) * self.params["p"])).view(n, h, w)
