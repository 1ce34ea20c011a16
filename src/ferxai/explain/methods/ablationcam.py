"""Ablation-CAM (Desai & Ramaswamy 2020): a channel's weight is the relative drop of the target
score when that channel of the target layer is ablated.

Gradient-free. Cost: 2 forward passes (activations, original score) plus one per channel of the
target layer, per image (x6 with aug_smooth); the library batches the ablated copies of an image,
`batch_size` at a time. The library computes the layers up to the target once and swaps the target
layer for an ablation layer that replays the cached activations; the swap is undone even if the
call fails. ViT token layers use the library's `AblationLayerVit`. The library's per-image progress
bars are switched off. See `_cam` for the shared behaviour.

The library's weight is (score - ablated score) / score: with ``output: logits`` a target logit
below 0 flips the sign of every channel weight and a logit of exactly 0 gives NaN maps, so prefer
``output: softmax`` (scores are positive) for this method.
"""

from __future__ import annotations

from typing import Any

import pytorch_grad_cam
import pytorch_grad_cam.ablation_cam as _ablation_cam
from pytorch_grad_cam.utils.find_layers import replace_layer_recursive

from ferxai.explain.methods._cam import CamExplainer, _quiet_progress


class AblationCAM(CamExplainer):
    name = "ablationcam"
    cam_class = pytorch_grad_cam.AblationCAM
    uses_gradients = False

    def _cam_kwargs(self) -> dict[str, Any]:
        # A fresh ablation layer per call: the library's default argument is one shared instance
        # that keeps state (activations, indices) between objects.
        tokens = len(self._probe()) == 3
        layer = pytorch_grad_cam.AblationLayerVit() if tokens else pytorch_grad_cam.AblationLayer()
        return {"batch_size": self.batch_size, "ablation_layer": layer}

    def _library_context(self) -> Any:
        return _quiet_progress(_ablation_cam)

    def _after_call(self, cam: Any) -> None:
        # No-op after a normal call (the library swaps the layer back itself).
        replace_layer_recursive(self.forward_model, cam.ablation_layer, self._layer)
