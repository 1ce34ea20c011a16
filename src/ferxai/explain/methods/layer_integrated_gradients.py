"""Layer integrated gradients: integrated gradients of a hidden layer's activations (or inputs),
summed over channels and upsampled (bilinear) to the input size.

The path still runs from a baseline *image* to the input; completeness holds in layer space.
"""

from __future__ import annotations

import torch
from captum.attr import LayerIntegratedGradients as _CaptumLayerIntegratedGradients

from ferxai.explain.base import Explainer
from ferxai.explain.baselines import ReferenceBaselines
from ferxai.explain.layers import explainer_layer, layer_map_to_image
from ferxai.explain.surgery import adopt_prepared_model, reused_activations


class LayerIntegratedGradients(ReferenceBaselines, Explainer):
    """Parameters: ``layer`` (None = the arch's default target layer, e.g. fer_cnn
    "features.block3.relu2", resnet "layer4"; a dotted module path otherwise);
    ``attribute_to_layer_input`` (False); ``n_steps`` (50); ``method`` ("gausslegendre");
    ``baseline`` ("black"); ``blur_sigma`` (5.0 px).

    Runs on a surgery-prepared copy of the model, so a layer path naming an activation that the
    original calls twice (ResNet's ``layer4.1.relu``) means its first call only."""

    name = "layer_integrated_gradients"

    def validate(self) -> None:
        explainer_layer(self)  # a bad path fails before the (costlier) model copy
        adopt_prepared_model(self, check_reuse=False)
        self.layer_path, self.layer = explainer_layer(self)
        reused = reused_activations(self.model, names=[self.layer_path])
        if reused:
            raise self.unsupported(f"layer {self.layer_path!r} runs {reused[self.layer_path]} times per "
                                   f"forward; pick a layer that runs once")

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        baselines = self._baseline(inputs, targets)
        method = _CaptumLayerIntegratedGradients(self.forward_model, self.layer)
        k = self.batch_size
        maps = []
        for x, b, t in zip(inputs.split(k), baselines.split(k), targets.split(k)):
            attr = method.attribute(x, baselines=b, target=t, n_steps=self.params["n_steps"],
                                    method=self.params["method"], internal_batch_size=self.batch_size,
                                    attribute_to_layer_input=self.params["attribute_to_layer_input"])
            if isinstance(attr, (tuple, list)):
                if len(attr) != 1:
                    raise self.unsupported(f"layer {self.layer_path!r} has {len(attr)} tensor "
                                           f"{'inputs' if self.params['attribute_to_layer_input'] else 'outputs'}")
                attr = attr[0]
            try:
                maps.append(layer_map_to_image(attr, tuple(inputs.shape[2:])))
            except ValueError as err:
                raise self.unsupported(f"layer {self.layer_path!r}: {err}") from err
        return torch.cat(maps)
