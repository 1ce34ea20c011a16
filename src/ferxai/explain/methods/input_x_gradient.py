"""Input x gradient (Shrikumar et al. 2016): each pixel's value times the target's gradient there."""

from __future__ import annotations

import torch
from captum.attr import InputXGradient as _CaptumInputXGradient

from ferxai.explain.base import Explainer


class InputXGradient(Explainer):
    """No parameters. Signed; for a linear model it is each pixel's exact contribution w * x."""

    name = "input_x_gradient"

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        method = _CaptumInputXGradient(self.forward_model)
        return torch.cat([
            method.attribute(x, target=t)
            for x, t in zip(inputs.split(self.batch_size), targets.split(self.batch_size))
        ])
