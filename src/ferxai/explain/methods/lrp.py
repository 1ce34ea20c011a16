"""Layer-wise Relevance Propagation (zennit), with canonizers per architecture.

LRP redistributes the target class's *logit* backwards, layer by layer, so that the input
relevances sum (approximately) to that logit. It is computed with zennit's `Gradient` attributor
under a rule composite: one forward pass plus one modified backward pass per image, all images of
a chunk in one pass.

Why zennit and not Captum: Captum's LRP does not see ResNet's ``out += identity`` (a tensor op,
not a module), so relevance is not conserved through residual blocks (sums off by orders of
magnitude). zennit's canonizers rewrite the blocks so the addition is a module with its own rule.

Composites (parameter ``composite``)
------------------------------------
Every composite below also gives

* ``input_norm`` (the model's own ``(x - mean) / std``) the *Pass* rule: an element-wise affine
  map has one input per output, so each pixel receives exactly the relevance of its normalised
  value (the plain gradient would instead scale relevance by ``1 / std``);
* ReLUs and (unmerged) batch norms the Pass rule, residual sums and average pools zennit's Norm
  rule (relevance proportional to each summand), max pools the plain gradient (winner takes all).

``epsilon``            LRP-epsilon on every convolution and linear layer after the first; the first
                       convolution gets the ZBox rule, bounded by the pixel range [0, 1] mapped
                       through the model's normalisation (low = -mean/std, high = (1-mean)/std).
                       Built from zennit's SpecialFirstLayerMapComposite + Epsilon/ZBox rules.
``epsilon_plus_flat``  zennit ``EpsilonPlusFlat`` (default): Flat rule on the first layer, z+ on
                       the other convolutions, epsilon on the dense classifier. Zennit's
                       recommended composite for CNNs; maps are positive-dominated.
``alpha2_beta1``       zennit ``EpsilonAlpha2Beta1Flat``: Flat first layer, alpha=2/beta=1 on the
                       other convolutions, epsilon on the classifier.
``epsilon_gamma_box``  zennit ``EpsilonGammaBox``: ZBox first layer (bounds as for ``epsilon``),
                       gamma=0.25 on the other convolutions, epsilon on the classifier.

``epsilon`` (default 1e-6) is the epsilon rule's stabiliser, added to each denominator with its
sign (zennit's absolute epsilon). Raising it (e.g. 0.1-0.25 for the ``epsilon`` composite) gives
smoother maps but absorbs relevance: the conservation ratio drops below 1.

Canonizers (by model type, not by name)
---------------------------------------
Each architecture's module supplies them (``lrp_canonizers``, found through the model's family in
`ferxai.models.zoo`; zennit is imported only when LRP asks), together with the layer that gets the
first-layer rule (the catalog's ``first_layer``) and the composites it refuses (``lrp_refusal``):

fer_cnn      ``SequentialMergeBatchNorm`` (every BN directly follows its convolution).
resnet*      ``zennit.torchvision.ResNetCanonizer`` (BN merge + a Sum module for the residual add;
             works on the zoo's ``NormalizedResNet`` because it matches the torchvision blocks).
densenet*    ``ferxai.models.densenet.densenet_canonizer``: zennit has none, and its sequential BN
             merge would fold each pre-activation BN into the wrong convolution. Ours merges only
             the true conv->BN pairs by name, leaves the pre-activation BNs (BN->ReLU->conv, not
             mergeable across the ReLU) to the Pass rule, and makes the head's functional ReLU and
             pooling modules so they get rules. Relevance stays conserved, but the BNs' shift/scale
             do not redistribute it (an approximation, as for any pre-activation network).
             Composite ``epsilon`` is refused on DenseNet: relevance passed unchanged through a
             *shifted* BN lands on pre-BN values near zero, which the epsilon rule of the layer
             below divides by, so sums explode (1e10-1e30 x the logit in a random-BN model, even
             with a relative epsilon). z+, alpha-beta and gamma denominators only contain positive
             contributions and stay bounded. Treating these BNs with the epsilon rule instead is
             stable but lets their shifts absorb nearly all relevance (ratios ~0.05), so we don't.
vit_small    unsupported: attention and LayerNorm need dedicated rules (e.g. AttnLRP) that
             zennit 0.5 does not provide; a plain composite gives non-conserving maps.

Conservation
------------
After each `attribute` call, `last_conservation` holds sum(input relevance) / target logit per
image (and `last_relevance_sums`, `last_target_logits` the two parts), for the pipeline to log.
With zero biases (and zero BN shifts) the ratio is 1 within 1e-3 for every composite on fer_cnn,
ResNet and DenseNet (the tests check it). With biases, relevance is absorbed by positive biases
(z+, alpha-beta, gamma: ratios below 1; measured 0.3-0.7 on randomly initialised BN statistics) or
shifted either way by the epsilon rule (ratios can even change sign when the logit is close to 0,
since the logit then mostly comes from biases); a large epsilon absorbs relevance. Values far from
this range (|ratio| of 1e2 and more) mean relevance is not being propagated correctly: without
ResNetCanonizer's Sum module a zero-bias ResNet gives ~1e8-1e9, and Captum's LRP on the same
model ~1e10.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn as nn

from ferxai.explain.base import Explainer, ExplainerConfigError
from ferxai.explain.catalog import LRP_COMPOSITES as COMPOSITES
from ferxai.explain.catalog import LRP_MODIFIED_PASSES as MODIFIED_PASSES
from ferxai.models import catalog
from ferxai.models.common import InputNormalization
from ferxai.models.zoo import family_of, implementation


# --------------------------------------------------------------------------- helpers


def _input_norm(model: nn.Module) -> InputNormalization | None:
    norm = getattr(model, "input_norm", None)
    return norm if isinstance(norm, InputNormalization) else None


def _lrp_supported() -> str:
    """The architectures whose module supplies LRP canonizers, for error messages."""
    return ", ".join(a for f in catalog.FAMILIES.values() if hasattr(implementation(f), "lrp_canonizers")
                     for a in catalog.architectures_of(f.name))


def conservation_ratio(relevance: torch.Tensor, target_logits: torch.Tensor) -> torch.Tensor:
    """Per image: sum of relevance (over all but the batch dimension; or already-summed (N,)
    values) divided by the target logit."""
    relevance = relevance.detach()
    sums = (relevance.flatten(1).sum(1) if relevance.ndim > 1 else relevance).double()
    return (sums / target_logits.detach().double()).float()


# --------------------------------------------------------------------------- explainer


class LRP(Explainer):
    """Layer-wise Relevance Propagation of the target logit (zennit composites + canonizers)."""

    name: ClassVar[str] = "lrp"

    last_conservation: torch.Tensor | None = None
    last_relevance_sums: torch.Tensor | None = None
    last_target_logits: torch.Tensor | None = None

    def validate(self) -> None:
        if self.output != "logits":
            raise ExplainerConfigError(
                "method 'lrp': output must be 'logits' — LRP explains the target logit (relevance is "
                "conserved against it); softmax is not a layer LRP rules can propagate through"
            )
        model = self.model
        family = family_of(model)
        arch_module = implementation(family) if family is not None else None
        refusal = getattr(arch_module, "lrp_refusal", None)
        reason = refusal(self.params["composite"]) if refusal is not None else None
        if reason:
            raise self.unsupported(reason)
        self._arch_canonizers = getattr(arch_module, "lrp_canonizers", None)
        if self._arch_canonizers is None:
            raise self.unsupported(
                f"no LRP canonizer is defined for {type(model).__name__}; supported: {_lrp_supported()}"
            )
        first = family.first_layer
        # zennit's first-layer composites take the first matching module in registration order;
        # make sure that is the layer fed by the pixels.
        from zennit.types import Linear

        first_linear = next((n for n, m in model.named_modules() if isinstance(m, Linear)), None)
        if first_linear != first:
            raise self.unsupported(
                f"the first linear module in registration order is {first_linear!r}, not the input "
                f"layer {first!r}; first-layer LRP rules would be applied to the wrong layer"
            )
        self._composite = self._make_composite()

    # -- composite -------------------------------------------------------------------------
    def _canonizers(self) -> list:
        return self._arch_canonizers(self.model)

    def _box_bounds(self) -> tuple[torch.Tensor | float, torch.Tensor | float]:
        """Pixel range [0, 1] mapped through the model's normalisation, shaped (1, C, 1, 1)."""
        norm = _input_norm(self.model)
        if norm is None:
            return 0.0, 1.0
        mean, std = norm.mean.detach().clone(), norm.std.detach().clone()
        return (0.0 - mean) / std, (1.0 - mean) / std

    def _make_composite(self):
        from zennit.composites import (
            EpsilonAlpha2Beta1Flat,
            EpsilonGammaBox,
            EpsilonPlusFlat,
            SpecialFirstLayerMapComposite,
            layer_map_base,
        )
        from zennit.rules import Epsilon, Pass, ZBox
        from zennit.types import Convolution, Linear

        eps = self.params["epsilon"]
        canonizers = self._canonizers()
        # Prepended to every layer map: the model's own normalisation passes relevance through.
        norm_map = [(InputNormalization, Pass())]
        kind = self.params["composite"]
        if kind == "epsilon":
            low, high = self._box_bounds()
            return SpecialFirstLayerMapComposite(
                layer_map=norm_map + layer_map_base() + [(Linear, Epsilon(epsilon=eps))],
                first_map=[(Convolution, ZBox(low=low, high=high))],
                canonizers=canonizers,
            )
        if kind == "epsilon_plus_flat":
            return EpsilonPlusFlat(epsilon=eps, layer_map=norm_map, canonizers=canonizers)
        if kind == "alpha2_beta1":
            return EpsilonAlpha2Beta1Flat(epsilon=eps, layer_map=norm_map, canonizers=canonizers)
        low, high = self._box_bounds()
        return EpsilonGammaBox(low=low, high=high, epsilon=eps, layer_map=norm_map, canonizers=canonizers)

    # -- attribution -----------------------------------------------------------------------
    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        from zennit.attribution import Gradient

        maps, sums, logits = [], [], []
        for start in range(0, len(inputs), self.batch_size):
            x = inputs[start:start + self.batch_size].detach().clone()
            t = targets[start:start + self.batch_size]

            def attr_output(out: torch.Tensor, t: torch.Tensor = t) -> torch.Tensor:
                # relevance entering the network: the target logit, nothing for the other classes
                return torch.nn.functional.one_hot(t, out.shape[-1]).to(out.dtype) * out.detach()

            with torch.enable_grad(), Gradient(model=self.model, composite=self._composite) as attributor:
                output, relevance = attributor(x, attr_output)
            target_logit = output.detach().gather(1, t[:, None]).squeeze(1)
            relevance = relevance.detach()
            maps.append(relevance)
            sums.append(relevance.flatten(1).sum(1))
            logits.append(target_logit)
        relevance = torch.cat(maps)
        self.last_relevance_sums = torch.cat(sums).float().cpu()
        self.last_target_logits = torch.cat(logits).float().cpu()
        self.last_conservation = conservation_ratio(self.last_relevance_sums, self.last_target_logits)
        return relevance


__all__ = ["COMPOSITES", "LRP", "MODIFIED_PASSES", "conservation_ratio"]
