"""Integrated gradients (Sundararajan et al. 2017): gradients averaged along the straight path
from a baseline image to the input, times (input - baseline).

Attributions sum to f(input) - f(baseline) (completeness), up to the quadrature error of
`n_steps`. The baseline is the question asked: see ferxai.explain.baselines.
"""

from __future__ import annotations

import torch
from captum.attr import IntegratedGradients as _CaptumIntegratedGradients

from ferxai.explain.base import Explainer
from ferxai.explain.baselines import ReferenceBaselines


class IntegratedGradients(ReferenceBaselines, Explainer):
    """Parameters: ``n_steps`` (50) integration points; ``method`` ("gausslegendre", or captum's
    riemann_left/right/middle/trapezoid); ``baseline`` ("black"; blur | uniform | mean | class_mean);
    ``blur_sigma`` (5.0 px, for baseline "blur"). Steps of several images share a forward pass
    (``batch_size`` inputs at most)."""

    name = "integrated_gradients"

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        baselines = self._baseline(inputs, targets)
        method = _CaptumIntegratedGradients(self.forward_model)
        k = self.batch_size
        return torch.cat([
            method.attribute(x, baselines=b, target=t, n_steps=self.params["n_steps"],
                             method=self.params["method"], internal_batch_size=self.batch_size)
            for x, b, t in zip(inputs.split(k), baselines.split(k), targets.split(k))
        ])
