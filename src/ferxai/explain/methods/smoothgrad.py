"""SmoothGrad (Smilkov et al. 2017): saliency averaged over noisy copies of the input (captum's
NoiseTunnel over Saliency)."""

from __future__ import annotations

import torch
from captum.attr import NoiseTunnel
from captum.attr import Saliency as _CaptumSaliency

from ferxai.explain.base import Explainer

# aggregation (ferxai.explain.catalog.SMOOTHGRAD_AGGREGATIONS) -> (Saliency's abs, NoiseTunnel's nt_type)
AGGREGATIONS: dict[str, tuple[bool, str]] = {
    "abs": (True, "smoothgrad"),        # mean |grad|
    "sq": (False, "smoothgrad_sq"),     # mean grad^2
    "raw": (False, "smoothgrad"),       # mean grad (signed)
    "grad_x_input": (False, "smoothgrad"),  # (mean grad) * input (signed)
}


class SmoothGrad(Explainer):
    """Parameters: ``nt_samples`` (25) noisy copies per image; ``stdevs`` (0.15) Gaussian noise
    std in [0, 1] image units; ``aggregation`` ("abs" = mean |grad|, "sq" = mean grad², "raw" =
    mean grad, "grad_x_input" = mean grad x input). Noise comes from torch's global RNG."""

    name = "smoothgrad"

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        use_abs, nt_type = AGGREGATIONS[self.params["aggregation"]]
        tunnel = NoiseTunnel(_CaptumSaliency(self.forward_model))
        k = min(len(inputs), self.batch_size)  # images per call; noisy copies fill the batch
        samples_per_pass = max(1, self.batch_size // k)
        maps = torch.cat([
            tunnel.attribute(x, nt_type=nt_type, nt_samples=self.params["nt_samples"],
                             nt_samples_batch_size=samples_per_pass, stdevs=float(self.params["stdevs"]),
                             target=t, abs=use_abs)
            for x, t in zip(inputs.split(k), targets.split(k))
        ])
        if self.params["aggregation"] == "grad_x_input":
            maps = maps * inputs
        return maps
