"""Guided Grad-CAM (Selvaraju et al. 2017; captum): guided backpropagation multiplied by the
(upsampled, ReLU'd) Grad-CAM map of a convolutional layer."""

from __future__ import annotations

import warnings

import torch
from captum.attr import GuidedGradCam as _CaptumGuidedGradCam

from ferxai.explain.base import Explainer
from ferxai.explain.layers import explainer_layer
from ferxai.explain.surgery import adopt_prepared_model, require_relu_modules


class GuidedGradCam(Explainer):
    """Parameters: ``layer`` (None = the arch's default target layer); ``interpolate_mode``
    ("bilinear"; Grad-CAM map upsampling: nearest | bilinear | bicubic | area);
    ``attribute_to_layer_input`` (False).

    Explains a surgery-prepared copy of the model (ferxai.explain.surgery). Models without
    nn.ReLU modules (vit_small) are unsupported, as for guided backprop."""

    name = "guided_gradcam"

    def validate(self) -> None:
        require_relu_modules(self)
        explainer_layer(self)  # a bad path fails before the model copy
        adopt_prepared_model(self)
        self.layer_path, self.layer = explainer_layer(self)  # the same path, in the prepared copy

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        method = _CaptumGuidedGradCam(self.forward_model, self.layer)
        k = self.batch_size
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Setting backward hooks")
            maps = [
                method.attribute(x, target=t, interpolate_mode=self.params["interpolate_mode"],
                                 attribute_to_layer_input=self.params["attribute_to_layer_input"])
                for x, t in zip(inputs.split(k), targets.split(k))
            ]
        return torch.cat(maps)
