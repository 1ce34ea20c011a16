"""XGrad-CAM (Fu et al. 2020): gradients weighted by the channel's normalised activations.

Weight of channel k: sum_ij g_ij A_ij / sum_ij A_ij. One forward+backward pass per image (x6 with
aug_smooth); see `_cam` for the shared behaviour.
"""

from __future__ import annotations

import torch

from ferxai.explain.methods._cam import CamExplainer, LayerRecord

_EPS = 1e-7


class XGradCAM(CamExplainer):
    name = "xgradcam"

    def channel_weights(self, layer: LayerRecord, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        summed = layer.acts.sum(dim=(2, 3), keepdim=True)
        return (layer.grads * layer.acts / (summed + _EPS)).sum(dim=(2, 3))
