"""Control `center`: a centred isotropic Gaussian, the same for every image.

The prior of centred, aligned faces: a metric that scores it high rewards maps for sitting where
the features usually are, not for what the model used. ``sigma`` is the Gaussian's standard
deviation as a fraction of the image's shorter side.
"""

from __future__ import annotations

import torch

from ferxai.explain.methods._control import ControlExplainer


class CenterControl(ControlExplainer):
    name = "center"

    def control_maps(self, inputs: torch.Tensor) -> torch.Tensor:
        n, _, h, w = inputs.shape
        sigma = float(self.params["sigma"]) * min(h, w)
        ys = torch.arange(h, dtype=torch.float32, device=inputs.device) - (h - 1) / 2
        xs = torch.arange(w, dtype=torch.float32, device=inputs.device) - (w - 1) / 2
        gauss = torch.exp(-(ys[:, None] ** 2 + xs[None, :] ** 2) / (2 * sigma ** 2))
        return gauss.expand(n, h, w).clone()
