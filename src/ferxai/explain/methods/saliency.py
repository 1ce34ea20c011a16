"""Saliency (Simonyan et al. 2014): the gradient of the target score w.r.t. the input pixels."""

from __future__ import annotations

import torch
from captum.attr import Saliency as _CaptumSaliency

from ferxai.explain.base import Explainer


class Saliency(Explainer):
    """``abs`` (True): |gradient| (unsigned); False keeps the gradient's sign.

    Colour channels are summed after taking |.|, so with abs the map is sum_c |d f / d x_c|.
    """

    name = "saliency"

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        method = _CaptumSaliency(self.forward_model)
        return torch.cat([
            method.attribute(x, target=t, abs=self.params["abs"])
            for x, t in zip(inputs.split(self.batch_size), targets.split(self.batch_size))
        ])
