"""Control `edge`: the Sobel gradient magnitude of the input (channels averaged first).

It sees only the image, never the model: a localisation metric may rank it high where the
ground-truth features are high-contrast, a randomisation check must not (the map cannot change
when the model does).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ferxai.explain.methods._control import ControlExplainer

_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


class EdgeControl(ControlExplainer):
    name = "edge"

    def control_maps(self, inputs: torch.Tensor) -> torch.Tensor:
        gray = inputs.mean(dim=1, keepdim=True)
        kernels = torch.stack([_SOBEL_X, _SOBEL_X.T])[:, None].to(gray)
        gradients = F.conv2d(F.pad(gray, (1, 1, 1, 1), mode="replicate"), kernels)
        return gradients.square().sum(dim=1).sqrt()
