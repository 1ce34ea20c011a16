"""Ablation-CAM (Desai & Ramaswamy 2020): a channel's weight is the relative drop of the target
score when that channel of the target layer is ablated.

Gradient-free. Cost: 1 forward pass (activations and the original scores) plus one per channel of
the target layer, per image (x6 with aug_smooth). The ablated passes of all images of a call go
through the model `batch_size` at a time: the input copies run up to the target layer, whose
output a forward hook (alive only during the call) replaces by the recorded activations with one
channel ablated. Ablated means set to 0 when the image's smallest activation is 0 (ReLU layers),
otherwise to that minimum minus 1e7, as pytorch-grad-cam does (whose value drifts further
negative with each copy of a batch on layers with negative activations; here every copy gets the
same value). ViT token layers ablate the channel in every token, class token included.

The weight is (score - ablated score) / score: with ``output: logits`` a target logit below 0 flips
the sign of every channel weight and a logit of exactly 0 gives NaN maps, so prefer
``output: softmax`` (scores are positive) for this method.
"""

from __future__ import annotations

import torch

from ferxai.explain.methods._cam import CamExplainer, LayerRecord, target_scores

_ABLATION_OFFSET = 1e7


class AblationCAM(CamExplainer):
    name = "ablationcam"
    uses_gradients = False

    def channel_weights(self, layer: LayerRecord, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        output = layer.output
        n, channels = layer.acts.shape[:2]
        channel_dim = 1 if output.ndim == 4 else 2  # feature maps (N, C, h, w); tokens (N, T, C)
        low = output.flatten(1).amin(dim=1)
        value = torch.where(low == 0, torch.zeros_like(low), low - _ABLATION_OFFSET)
        image = torch.arange(n * channels, device=inputs.device) // channels
        channel = torch.arange(n * channels, device=inputs.device) % channels
        ablated = torch.empty(n * channels, device=inputs.device)
        replacement: list[torch.Tensor] = []
        handle = self._layer.register_forward_hook(lambda _m, _i, _out: replacement[0])
        try:
            with torch.no_grad():
                for start in range(0, n * channels, self.batch_size):
                    rows = slice(start, start + self.batch_size)
                    copies = output[image[rows]].clone()
                    index = torch.arange(len(copies), device=inputs.device)
                    if channel_dim == 1:
                        copies[index, channel[rows]] = value[image[rows], None, None]
                    else:
                        copies[index, :, channel[rows]] = value[image[rows], None]
                    replacement[:] = [copies]
                    ablated[rows] = target_scores(self.forward_model(inputs[image[rows]]), targets[image[rows]])
        finally:
            handle.remove()
        original = layer.scores[:, None]
        return (original - ablated.view(n, channels)) / original
