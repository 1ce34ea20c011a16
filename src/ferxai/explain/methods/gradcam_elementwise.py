"""Grad-CAM element-wise: ReLU(activations x gradients) element-wise, summed over channels.

One forward+backward pass per image (x6 with aug_smooth); see `_cam` for the shared behaviour.
"""

from __future__ import annotations

import torch

from ferxai.explain.methods._cam import CamExplainer, LayerRecord


class GradCAMElementWise(CamExplainer):
    name = "gradcam_elementwise"

    def weighted_activations(self, layer: LayerRecord, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return (layer.grads * layer.acts).clamp(min=0)
