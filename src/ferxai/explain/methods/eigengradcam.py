"""EigenGrad-CAM: first principal component of activations x gradients (class-specific EigenCAM).

One forward+backward pass per image (x6 with aug_smooth). The projection is
`_eigen.first_component_projection` (batched, and signed the same on every machine); see `_cam`
for the rest.
"""

from __future__ import annotations

import torch

from ferxai.explain.methods._cam import CamExplainer, LayerRecord
from ferxai.explain.methods._eigen import first_component_projection


class EigenGradCAM(CamExplainer):
    name = "eigengradcam"

    def layer_map(self, layer: LayerRecord, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return first_component_projection(layer.grads * layer.acts)
