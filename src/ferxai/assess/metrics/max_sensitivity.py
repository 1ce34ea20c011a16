"""Max-sensitivity (Yeh et al. 2019), by `captum.metrics.sensitivity_max`: the largest relative
change of the map, ||map(x + d) - map(x)|| / ||map(x)|| (Frobenius), over `samples` perturbations
d drawn uniformly from the L-infinity ball of `radius` (image units, [0, 1]). Lower is better: a
map that changes under noise the model does not notice explains the noise. Needs the method
itself (the maps are recomputed), so it costs (1 + samples) attributions per image: only the
first `max_images` explained images are scored. Each image's perturbations come from a generator
seeded by `seed` and the image's position in the selection (`offset`: the first image's), the same
for every method and however the images are sharded.
"""

from __future__ import annotations

from typing import Callable

import torch


def max_sensitivity(explain: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], images: torch.Tensor,
                    maps: torch.Tensor, targets: torch.Tensor, *, radius: float = 0.02, samples: int = 4,
                    max_images: int | None = None, seed: int = 0, per_call: int = 1,
                    offset: int = 0) -> torch.Tensor:
    """(N,) values, NaN beyond the first `max_images` images. `explain(x, targets)` is the
    method's `attribute`; `per_call` images (with all their perturbed copies) go into one call."""
    from captum.metrics import sensitivity_max

    n = images.shape[0]
    count = n if max_images is None else min(n, max_images)
    chunk = {"start": 0}

    def perturb(inputs, perturb_radius):
        x = inputs[0] if isinstance(inputs, tuple) else inputs
        copies = len(x) // max(1, samples)
        first = chunk["start"]
        # captum hands each image's copies consecutively (repeat_interleave)
        noise = torch.cat([torch.empty((samples, *x.shape[1:])).uniform_(
            -perturb_radius, perturb_radius,
            generator=torch.Generator().manual_seed(seed * 1_000_003 + offset + first + k))
            for k in range(copies)]) if copies else torch.zeros_like(x)
        return x + noise.to(x)

    def explanation(inputs, target):
        x = inputs[0] if isinstance(inputs, tuple) else inputs
        target = torch.as_tensor(target).reshape(-1)
        if len(target) == 1:  # captum leaves a single image's target unexpanded
            target = target.expand(len(x))
        with torch.enable_grad():  # captum calls this under no_grad; gradient methods need it
            return (explain(x, target).detach(),)  # captum iterates over what this returns

    values = torch.full((n,), float("nan"))
    for s in range(0, count, max(1, per_call)):
        stop = min(count, s + max(1, per_call))
        chunk["start"] = s
        values[s:stop] = sensitivity_max(explanation, images[s:stop], perturb_func=perturb, perturb_radius=radius,
                                         n_perturb_samples=samples, target=targets[s:stop].long()).float().cpu()
    return values
