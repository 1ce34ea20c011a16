"""SmoothGrad (Smilkov et al. 2017): saliency averaged over noisy copies of the input (captum's
NoiseTunnel over Saliency)."""

from __future__ import annotations

import torch
from captum.attr import NoiseTunnel
from captum.attr import Saliency as _CaptumSaliency

from ferxai.explain.base import Explainer
from ferxai.explain.baselines import is_int, is_number, require

# aggregation -> (Saliency's abs, NoiseTunnel's nt_type)
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
    family = "gradient"
    library = "captum"
    defaults = {"nt_samples": 25, "stdevs": 0.15, "aggregation": "abs"}
    signed = False

    def validate(self) -> None:
        require(self, "nt_samples", is_int(self.params["nt_samples"], 1), "an integer >= 1")
        require(self, "stdevs", is_number(self.params["stdevs"], 0.0, 1.0),
                "a number in [0, 1] (noise std in image units)")
        require(self, "aggregation", self.params["aggregation"] in AGGREGATIONS,
                f"one of {', '.join(AGGREGATIONS)}")
        self.signed = self.params["aggregation"] in ("raw", "grad_x_input")

    def passes_per_image(self) -> float:
        return float(self.params["nt_samples"])

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
