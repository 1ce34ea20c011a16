"""GradientSHAP (Lundberg & Lee 2017; captum): expected gradients. For each of `n_samples` draws:
add Gaussian noise to the input, pick a baseline from a distribution and a random point on the
path between them, and take (noisy input - baseline) x gradient there; average the draws.

This is captum's GradientShap (NoiseTunnel over InputBaselineXGradient) with the expansion done
here: rows of (noisy input, baseline) pairs go through captum's InputBaselineXGradient in
`batch_size`-bounded chunks, which also allows per-image baseline distributions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from captum.attr._core.gradient_shap import InputBaselineXGradient

from ferxai.explain.base import Explainer
from ferxai.explain.baselines import ReferenceBaselines


@contextmanager
def numpy_rng_from_torch() -> Iterator[None]:
    """Seed numpy's global RNG (captum draws path points with it) from torch's, then restore it,
    so torch.manual_seed alone makes the method reproducible."""
    state = np.random.get_state()
    np.random.seed(int(torch.randint(0, 2**31 - 1, (1,)).item()))
    try:
        yield
    finally:
        np.random.set_state(state)


class GradientShap(ReferenceBaselines, Explainer):
    """Parameters: ``n_samples`` (20) draws per image; ``stdevs`` (0.09) input noise std in [0, 1]
    image units; ``baseline`` ("uniform"; reference | black | blur | mean | class_mean, see
    ferxai.explain.baselines); ``blur_sigma`` (5.0 px). Draws use torch's global RNG."""

    name = "gradient_shap"

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        n = int(self.params["n_samples"])
        shape = inputs.shape[1:]
        baselines = self._baseline_samples(inputs, targets, n).reshape(-1, *shape)
        rows = inputs.repeat_interleave(n, dim=0)
        rows = rows + float(self.params["stdevs"]) * torch.randn_like(rows)
        row_targets = targets.repeat_interleave(n)
        method = InputBaselineXGradient(self.forward_model)
        k = self.batch_size
        with numpy_rng_from_torch():
            attrs = torch.cat([
                method.attribute(x, baselines=b, target=t)
                for x, b, t in zip(rows.split(k), baselines.split(k), row_targets.split(k))
            ])
        return attrs.view(len(inputs), n, *shape).mean(dim=1)
