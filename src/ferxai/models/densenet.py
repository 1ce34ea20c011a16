"""DenseNet-121: torchvision's model with normalisation inside, a module-friendly head and a
small-input stem; its attributable copy and its LRP canonizer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torchvision.models import DenseNet
from torchvision.models.densenet import _DenseLayer

from ferxai.models.common import (
    InputNormalization,
    adapt_stem,
    adopt,
    call_torchvision_builder,
    fresh_relu,
    input_norm,
    no_inplace_relu,
    small_stem_wanted,
)


class NormalizedDenseNet(DenseNet):
    input_norm: InputNormalization

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # torchvision's forward, except that its final ReLU is not in-place: in-place it would
        # overwrite `features.norm5`'s output, which Grad-CAM hooks read and differentiate.
        out = F.relu(self.features(self.input_norm(x)))
        out = torch.flatten(F.adaptive_avg_pool2d(out, (1, 1)), 1)
        return self.classifier(out)


def build(
    arch: str, num_classes: int, in_channels: int, input_size: int, pretrained: bool,
    normalization: Mapping[str, Sequence[float]], *, small_stem: bool | None = None,
) -> nn.Module:
    model = call_torchvision_builder(arch, pretrained, num_classes=num_classes)
    small = small_stem_wanted(input_size, small_stem)
    conv0 = adapt_stem(arch, model.features.conv0, in_channels, small, pretrained)
    if conv0 is not None:
        model.features.conv0 = conv0
    if small:
        model.features.pool0 = nn.Identity()
    if pretrained:
        model.classifier = nn.Linear(model.classifier.in_features, num_classes)
        nn.init.zeros_(model.classifier.bias)
    no_inplace_relu(model)
    return adopt(model, NormalizedDenseNet, input_norm(normalization))


def owns(model: nn.Module) -> bool:
    return isinstance(model, DenseNet)


# --------------------------------------------------------------------------- attributable copy


class AttributableDenseNet(NormalizedDenseNet):
    """The zoo's DenseNet with its final (functional) ReLU as a module, `relu_out`, so that
    hook-based methods see and rewrite it."""

    relu_out: nn.Module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu_out(self.features(self.input_norm(x)))
        out = torch.flatten(F.adaptive_avg_pool2d(out, (1, 1)), 1)
        return self.classifier(out)


def make_attributable(model: nn.Module) -> None:
    # torchvision's dense layers call each ReLU module once and add nothing in place; only the
    # head's functional ReLU needs a module.
    for module in model.modules():
        if type(module) is NormalizedDenseNet:
            module.__class__ = AttributableDenseNet
            module.relu_out = fresh_relu()


# --------------------------------------------------------------------------- LRP
#
# zennit has no DenseNet canonizer and its SequentialMergeBatchNorm is *wrong* here: in leaf order
# each dense layer's `norm1` (and each transition's `norm`, and `norm5`) follows the previous
# layer's `conv2`, but it normalises the *concatenation* of all earlier features, so a sequential
# merge would fold it into the wrong convolution. Ours merges only the true conv->BN pairs by name
# (`conv0->norm0`, each layer's `conv1->norm2`) and leaves the pre-activation BNs (BN->ReLU->conv,
# not mergeable across the ReLU) to the Pass rule. It also replaces the functional `relu` and
# `adaptive_avg_pool2d` of the head with modules so they get rules (the functional ReLU's plain
# gradient would drop the relevance of units it zeroes).

EPSILON_REFUSAL = (
    "composite 'epsilon' is numerically unstable on DenseNet: its pre-activation batch "
    "norms (BN->ReLU->conv) cannot be merged and pass relevance through, and the epsilon "
    "rule then divides it by near-zero values (input relevance sums reach 1e10-1e30 x "
    "the logit); use composite 'epsilon_plus_flat', 'alpha2_beta1' or 'epsilon_gamma_box'"
)


def _head_forward(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """DenseNet forward with the head's ReLU and pooling as modules (`canonizer_relu/pool`)."""
    norm = getattr(self, "input_norm", None)
    if norm is not None:
        x = norm(x)
    out = self.canonizer_relu(self.features(x))
    out = torch.flatten(self.canonizer_pool(out), 1)
    return self.classifier(out)


def _head_map(name: str, module: nn.Module) -> dict[str, Any] | None:
    if isinstance(module, DenseNet):
        return {
            "forward": _head_forward.__get__(module),
            "canonizer_relu": nn.ReLU(),
            "canonizer_pool": nn.AdaptiveAvgPool2d((1, 1)),
        }
    return None


def densenet_bn_pairs(model: nn.Module) -> list[tuple[tuple[str], str]]:
    """(conv name,) -> BN name for the BNs that directly follow one convolution in a DenseNet."""
    pairs: list[tuple[tuple[str], str]] = []
    names = dict(model.named_modules())
    if isinstance(names.get("features.conv0"), nn.Conv2d) and isinstance(names.get("features.norm0"), nn.BatchNorm2d):
        pairs.append((("features.conv0",), "features.norm0"))
    for name, module in model.named_modules():
        if isinstance(module, _DenseLayer):
            pairs.append(((f"{name}.conv1",), f"{name}.norm2"))
    return pairs


def densenet_canonizer(model: nn.Module):
    """Canonizer for torchvision (and zoo) DenseNets; see the comment above."""
    from zennit.canonizers import AttributeCanonizer, CompositeCanonizer, NamedMergeBatchNorm

    return CompositeCanonizer([NamedMergeBatchNorm(densenet_bn_pairs(model)), AttributeCanonizer(_head_map)])


def lrp_canonizers(model: nn.Module) -> list:
    return [densenet_canonizer(model)]


def lrp_refusal(composite: str) -> str | None:
    return EPSILON_REFUSAL if composite == "epsilon" else None
