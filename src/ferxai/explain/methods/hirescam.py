"""HiResCAM (Draelos & Carin 2020): activations times gradients element-wise, summed over channels
(no spatial averaging, so the map is the gradient-times-activation of the layer's locations).

One forward+backward pass per image (x6 with aug_smooth). With eigen_smooth its faithfulness
guarantee no longer holds. See `_cam` for the shared behaviour.
"""

from __future__ import annotations

import torch

from ferxai.explain.methods._cam import CamExplainer, LayerRecord


class HiResCAM(CamExplainer):
    name = "hirescam"

    def weighted_activations(self, layer: LayerRecord, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return layer.grads * layer.acts
