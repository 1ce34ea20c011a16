"""Grad-CAM++ (Chattopadhay et al. 2018): channel weights from higher-order gradient terms.

The weight of channel k is sum_ij a_ij ReLU(g_ij) with a_ij = g^2 / (2 g^2 + sum(A) g^3) (their
Eq. 19, with exponentials of the score approximated by powers of the gradient), and a_ij = 0
where the gradient is 0. One forward+backward pass per image (x6 with aug_smooth); see `_cam` for
the shared behaviour.
"""

from __future__ import annotations

import torch

from ferxai.explain.methods._cam import CamExplainer, LayerRecord

_EPS = 1e-6


class GradCAMPlusPlus(CamExplainer):
    name = "gradcam_plusplus"

    def channel_weights(self, layer: LayerRecord, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        grads = layer.grads
        squared = grads * grads
        summed = layer.acts.sum(dim=(2, 3), keepdim=True)
        alpha = squared / (2 * squared + summed * squared * grads + _EPS)
        alpha = torch.where(grads != 0, alpha, torch.zeros_like(alpha))
        return (grads.clamp(min=0) * alpha).sum(dim=(2, 3))
