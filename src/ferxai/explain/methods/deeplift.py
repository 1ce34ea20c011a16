"""DeepLIFT (Shrikumar et al. 2017), rescale rule: attributions of f(input) - f(baseline) that
sum to it exactly, propagated with finite-difference multipliers through each nonlinearity."""

from __future__ import annotations

import warnings

import torch
from captum.attr import DeepLift as _CaptumDeepLift

from ferxai.explain.base import Explainer
from ferxai.explain.baselines import ReferenceBaselines
from ferxai.explain.surgery import adopt_prepared_model, require_deeplift_rules


def deeplift_rows(explainer: Explainer, inputs: torch.Tensor, baselines: torch.Tensor,
                  targets: torch.Tensor) -> torch.Tensor:
    """captum DeepLift row by row (input i against baseline i), at most `batch_size` model inputs
    per pass: each row costs two (captum runs input and baseline in one batch)."""
    method = _CaptumDeepLift(explainer.forward_model)
    k = max(1, explainer.batch_size // 2)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Setting forward, backward hooks")
        return torch.cat([
            method.attribute(x, baselines=b, target=t)
            for x, b, t in zip(inputs.split(k), baselines.split(k), targets.split(k))
        ])


def prepare_deeplift_model(explainer: Explainer) -> None:
    """DeepLIFT needs a rule for every nonlinearity and one module per activation call."""
    require_deeplift_rules(explainer)
    adopt_prepared_model(explainer)


class DeepLift(ReferenceBaselines, Explainer):
    """Parameters: ``baseline`` ("black"; blur | uniform | mean | class_mean), ``blur_sigma`` (5.0 px).

    Explains a surgery-prepared copy of the model (ferxai.explain.surgery). Models with
    nonlinearities captum has no DeepLIFT rule for (GELU, LayerNorm, attention: vit_small) are
    unsupported. With output="softmax" the softmax itself is crossed with its plain gradient, so
    attributions no longer sum exactly to the probability difference."""

    name = "deeplift"

    def validate(self) -> None:
        prepare_deeplift_model(self)

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return deeplift_rows(self, inputs, self._baseline(inputs, targets), targets)
