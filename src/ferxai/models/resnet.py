"""ResNet-18/34/50: torchvision's models with normalisation inside and a small-input stem."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torchvision.models import ResNet
from torchvision.models.resnet import BasicBlock, Bottleneck

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


class NormalizedResNet(ResNet):
    """torchvision's ResNet normalising its input first; no parameters besides `input_norm`, so
    torchvision's module names and weights are unchanged."""

    input_norm: InputNormalization

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(self.input_norm(x))


def build(
    arch: str, num_classes: int, in_channels: int, input_size: int, pretrained: bool,
    normalization: Mapping[str, Sequence[float]], *, small_stem: bool | None = None,
) -> nn.Module:
    model = call_torchvision_builder(arch, pretrained, num_classes=num_classes)
    small = small_stem_wanted(input_size, small_stem)
    conv1 = adapt_stem(arch, model.conv1, in_channels, small, pretrained)
    if conv1 is not None:
        model.conv1 = conv1
    if small:
        model.maxpool = nn.Identity()
    if pretrained:
        model.fc = nn.Linear(model.fc.in_features, num_classes)
    no_inplace_relu(model)
    return adopt(model, NormalizedResNet, input_norm(normalization))


def owns(model: nn.Module) -> bool:
    return isinstance(model, ResNet)


# --------------------------------------------------------------------------- attributable copy


class AttributableBasicBlock(BasicBlock):
    """torchvision BasicBlock with one ReLU module per call and an out-of-place residual add.

    torchvision's block calls `self.relu` twice, so a hook on it only keeps the last call, and
    ``out += identity`` modifies a tensor that hooks hold.
    """

    relu2: nn.Module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + identity)


class AttributableBottleneck(Bottleneck):
    """torchvision Bottleneck with one ReLU module per call and an out-of-place residual add."""

    relu2: nn.Module
    relu3: nn.Module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu3(out + identity)


def make_attributable(model: nn.Module) -> None:
    """Swap every torchvision residual block for its attributable subclass, in place.

    Exact classes only: a block someone subclassed has its own forward, which this would drop.
    """
    for module in model.modules():
        if type(module) is BasicBlock:
            module.__class__ = AttributableBasicBlock
            module.relu2 = fresh_relu()
        elif type(module) is Bottleneck:
            module.__class__ = AttributableBottleneck
            module.relu2 = fresh_relu()
            module.relu3 = fresh_relu()


# --------------------------------------------------------------------------- LRP


def lrp_canonizers(model: nn.Module) -> list:
    from zennit.torchvision import ResNetCanonizer

    # BN merge plus a Sum module for the residual add, which would otherwise get no rule (relevance
    # sums off by 1e8); it matches the torchvision blocks, so NormalizedResNet works as is.
    return [ResNetCanonizer()]
