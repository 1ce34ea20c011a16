"""Guided backpropagation (Springenberg et al. 2015): only positive gradients pass back through ReLUs."""

from __future__ import annotations

import warnings

import torch
from captum.attr import GuidedBackprop as _CaptumGuidedBackprop

from ferxai.explain.base import Explainer
from ferxai.explain.surgery import adopt_prepared_model, require_relu_modules


class GuidedBackprop(Explainer):
    """No parameters. Explains a surgery-prepared copy of the model (see ferxai.explain.surgery),
    because captum rewrites the backward pass of every nn.ReLU module. Models without nn.ReLU
    modules (vit_small) are unsupported."""

    name = "guided_backprop"
    # Deconvolution differs only in the ReLU backward rule, i.e. in the captum class.
    captum_class = _CaptumGuidedBackprop

    def validate(self) -> None:
        require_relu_modules(self)
        adopt_prepared_model(self)

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        method = self.captum_class(self.forward_model)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Setting backward hooks")
            return torch.cat([
                method.attribute(x, target=t)
                for x, t in zip(inputs.split(self.batch_size), targets.split(self.batch_size))
            ])
