"""Grad-CAM (Selvaraju et al. 2017): activations weighted by their spatially averaged gradients.

One forward+backward pass per image (x6 with aug_smooth); see `_cam` for the shared behaviour.
"""

from __future__ import annotations

import torch

from ferxai.explain.methods._cam import CamExplainer, LayerRecord


class GradCAM(CamExplainer):
    name = "gradcam"

    def channel_weights(self, layer: LayerRecord, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return layer.grads.mean(dim=(2, 3))
