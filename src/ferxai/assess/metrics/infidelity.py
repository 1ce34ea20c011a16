"""Infidelity (Yeh et al. 2019), by `captum.metrics.infidelity`: the expected squared difference
between the map's dot product with a random input perturbation and the output change that
perturbation causes. Perturbations are Gaussian noise of standard deviation `noise` (image units,
[0, 1]); with `normalize` the map is optimally rescaled first (captum's option), so methods whose
maps differ only in scale score alike. Lower is better. The noise is drawn from torch's generator
seeded by `seed`, the same for every map.
"""

from __future__ import annotations

import torch


def infidelity(model, images: torch.Tensor, maps: torch.Tensor, targets: torch.Tensor, *, noise: float = 0.1,
               samples: int = 16, normalize: bool = True, seed: int = 0, batch_size: int = 64) -> torch.Tensor:
    from captum.metrics import infidelity as captum_infidelity

    n, c, h, w = images.shape
    if tuple(maps.shape) != (n, h, w):
        raise ValueError(f"maps {tuple(maps.shape)} must be (N, H, W) = {(n, h, w)} for these images")
    generator = torch.Generator(device="cpu").manual_seed(seed)

    def perturb(inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        delta = (noise * torch.randn(inputs.shape, generator=generator)).to(inputs)
        return delta, inputs - delta

    # a (H, W) map stands for every channel of its pixel
    attributions = maps.detach().float()[:, None].expand(n, c, h, w) / c
    # captum evaluates all `samples` copies of the images it is given in one call: hand it as many
    # images as fill about one batch
    per_call = max(1, batch_size // samples)
    with torch.no_grad():
        values = [captum_infidelity(model, perturb, images[s:s + per_call], attributions[s:s + per_call],
                                    target=targets[s:s + per_call].long(), n_perturb_samples=samples,
                                    normalize=normalize)
                  for s in range(0, n, per_call)]
    return torch.cat(values).float() if values else torch.zeros(0)
