"""LayerCAM (Jiang et al. 2021): positive gradients weight each activation location.

One forward+backward pass per image (x6 with aug_smooth); see `_cam` for the shared behaviour.
"""

from __future__ import annotations

import torch

from ferxai.explain.methods._cam import CamExplainer, LayerRecord


class LayerCAM(CamExplainer):
    name = "layercam"

    def weighted_activations(self, layer: LayerRecord, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return layer.grads.clamp(min=0) * layer.acts
