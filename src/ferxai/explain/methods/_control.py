"""Shared base of the control "methods": maps that ignore the model, for scoring the scorers.

A metric that cannot put `random` last is not measuring anything; one that ranks `edge` (image
structure) or `center` (the dataset's prior) high measures something other than the model. They
go through the same jobs, shards and store as the real methods. No model pass is made (the
catalog's cost model says 0); `targets` are accepted and ignored.
"""

from __future__ import annotations

import torch

from ferxai.explain.base import Explainer


class ControlExplainer(Explainer):
    """Base of the controls: `control_maps(inputs) -> (N, H, W)` from the inputs alone."""

    def control_maps(self, inputs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.control_maps(inputs.detach().float())
