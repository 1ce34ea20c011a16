"""Score-CAM (Wang et al. 2020): a channel's weight is the target score of the input masked by
that channel's upsampled, min-max normalised activation map (softmax over channels).

Gradient-free. Cost: 1 forward pass plus one per channel of the target layer, per image (x6 with
aug_smooth). The masked copies of all images of a call go through the model `batch_size` at a
time and are built one batch at a time, so memory holds the upsampled maps (N x channels x H x W,
one plane each) plus one batch. The upsampling is bilinear with corners aligned, as in the
library. See `_cam` for the shared behaviour.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ferxai.explain.methods._cam import CamExplainer, LayerRecord, target_scores

_EPS = 1e-8


class ScoreCAM(CamExplainer):
    name = "scorecam"
    uses_gradients = False

    def channel_weights(self, layer: LayerRecord, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        n, channels = layer.acts.shape[:2]
        masks = F.interpolate(layer.acts.float(), size=inputs.shape[-2:], mode="bilinear", align_corners=True)
        low, high = torch.aminmax(masks.flatten(2), dim=2)
        masks = (masks - low[..., None, None]) / (high - low + _EPS)[..., None, None]
        scores = torch.empty(n * channels, device=inputs.device)
        image = torch.arange(n * channels, device=inputs.device) // channels
        flat_masks = masks.reshape(n * channels, 1, *inputs.shape[-2:])
        for start in range(0, n * channels, self.batch_size):
            rows = slice(start, start + self.batch_size)
            batch = inputs[image[rows]] * flat_masks[rows]
            scores[rows] = target_scores(self.forward_model(batch), targets[image[rows]])
        return torch.softmax(scores.view(n, channels), dim=-1)
