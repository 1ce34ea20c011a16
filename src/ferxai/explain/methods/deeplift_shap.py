"""DeepLIFT SHAP (Lundberg & Lee 2017): DeepLIFT averaged over a distribution of baselines,
approximating SHAP values.

Captum's DeepLiftShap expands every input against one shared baseline set and runs all of it in
one forward pass; here the same expansion (input i repeated against each of its baselines, then
the mean over baselines) runs through captum's DeepLift in `batch_size`-bounded chunks, which also
allows per-image baseline sets (blurred input, target-class mean).
"""

from __future__ import annotations

import torch

from ferxai.explain.base import Explainer
from ferxai.explain.baselines import ReferenceBaselines
from ferxai.explain.catalog import RANDOM_KINDS
from ferxai.explain.methods.deeplift import deeplift_rows, prepare_deeplift_model


class DeepLiftShap(ReferenceBaselines, Explainer):
    """Parameters: ``n_baselines`` (8) baselines per image; ``baseline`` ("uniform": uniform-noise
    images; "reference": training images given with set_reference(images=...); black | blur | mean |
    class_mean give one baseline each, i.e. plain DeepLIFT); ``blur_sigma`` (5.0 px).
    Draws use torch's global RNG."""

    name = "deeplift_shap"

    def validate(self) -> None:
        prepare_deeplift_model(self)

    def n_effective(self) -> int:
        """Baselines actually used per image: deterministic kinds would repeat one baseline."""
        return int(self.params["n_baselines"]) if self.params["baseline"] in RANDOM_KINDS else 1

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        n = self.n_effective()
        baselines = self._baseline_samples(inputs, targets, n)  # (N, n, C, H, W)
        rows = deeplift_rows(self, inputs.repeat_interleave(n, dim=0),
                             baselines.reshape(-1, *inputs.shape[1:]), targets.repeat_interleave(n))
        return rows.view(len(inputs), n, *rows.shape[1:]).mean(dim=1)
