"""Infidelity (Yeh et al. 2019), by `captum.metrics.infidelity`: the expected squared difference
between the map's dot product with a random input perturbation and the output change that
perturbation causes. Perturbations are Gaussian noise of standard deviation `noise` (image units,
[0, 1]); with `normalize` the map is optimally rescaled first (captum's option), so methods whose
maps differ only in scale score alike. Lower is better. Each image's noise comes from a generator
seeded by `seed` and the image's position in the selection (`offset`: the first image's): the same for
every map, whatever the batch size or sharding.
"""

from __future__ import annotations

import torch


def infidelity(model, images: torch.Tensor, maps: torch.Tensor, targets: torch.Tensor, *, noise: float = 0.1,
               samples: int = 16, normalize: bool = True, seed: int = 0, batch_size: int = 64,
               offset: int = 0) -> torch.Tensor:
    from captum.metrics import infidelity as captum_infidelity

    n, c, h, w = images.shape
    if tuple(maps.shape) != (n, h, w):
        raise ValueError(f"maps {tuple(maps.shape)} must be (N, H, W) = {(n, h, w)} for these images")
    # each image's noise from its own generator (seed, position), so a score does not depend on how
    # many images go into one call
    noise_of = torch.stack([noise * torch.randn((samples, c, h, w), generator=torch.Generator().manual_seed(
        seed * 1_000_003 + offset + i)) for i in range(n)]) if n else torch.zeros(0, samples, c, h, w)
    chunk = {"start": 0}

    def perturb(inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # captum hands each image's `samples` copies consecutively (repeat_interleave)
        first = chunk["start"]
        delta = noise_of[first:first + len(inputs) // samples].reshape(inputs.shape).to(inputs)
        return delta, inputs - delta

    # a (H, W) map stands for every channel of its pixel
    attributions = maps.detach().float()[:, None].expand(n, c, h, w) / c
    # captum evaluates all `samples` copies of the images it is given in one call: hand it as many
    # images as fill about one batch
    per_call = max(1, batch_size // samples)
    values = []
    with torch.no_grad():
        for s in range(0, n, per_call):
            chunk["start"] = s
            values.append(captum_infidelity(model, perturb, images[s:s + per_call], attributions[s:s + per_call],
                                            target=targets[s:s + per_call].long(), n_perturb_samples=samples,
                                            normalize=normalize))
    return torch.cat(values).float() if values else torch.zeros(0)
