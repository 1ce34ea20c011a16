"""fer_cnn: a compact VGG-style classifier for small grey faces (no torchvision needed)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ferxai.models.common import InputNormalization, default_normalization
from ferxai.models.catalog import ModelConfigError


class FerCNN(nn.Module):
    """Compact VGG-style classifier for small grey faces.

    Blocks of [conv3x3-BN-ReLU x2, maxpool2]; each ReLU is its own non-inplace module so that
    attribution methods can hook every activation separately (no surgery needed). Layer paths:
    ``features.block<i>.{conv1,bn1,relu1,conv2,bn2,relu2,pool}``; Grad-CAM's usual target is
    the last block's ``relu2``.
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 1,
        widths: Sequence[int] = (32, 64, 128),
        dropout: float = 0.3,
        normalization: Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        super().__init__()
        norm = normalization or default_normalization(in_channels)
        self.input_norm = InputNormalization(norm["mean"], norm["std"])
        blocks: OrderedDict[str, nn.Module] = OrderedDict()
        c_in = in_channels
        for i, width in enumerate(widths, start=1):
            blocks[f"block{i}"] = nn.Sequential(OrderedDict([
                ("conv1", nn.Conv2d(c_in, width, 3, padding=1, bias=False)),
                ("bn1", nn.BatchNorm2d(width)),
                ("relu1", nn.ReLU(inplace=False)),
                ("conv2", nn.Conv2d(width, width, 3, padding=1, bias=False)),
                ("bn2", nn.BatchNorm2d(width)),
                ("relu2", nn.ReLU(inplace=False)),
                ("pool", nn.MaxPool2d(2)),
            ]))
            c_in = width
        self.features = nn.Sequential(blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(c_in, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(self.input_norm(x))
        x = torch.flatten(self.pool(x), 1)
        return self.classifier(self.dropout(x))


def build(
    arch: str, num_classes: int, in_channels: int, input_size: int, pretrained: bool,
    normalization: Mapping[str, Sequence[float]], *,
    widths: Sequence[int] = (32, 64, 128), dropout: float = 0.3,
) -> nn.Module:
    if pretrained:
        raise ModelConfigError(f"{arch} has no pretrained weights; set pretrained: false")
    widths = [int(w) for w in widths]
    if not widths or any(w <= 0 for w in widths):
        raise ModelConfigError(f"{arch}: widths must be a non-empty list of positive ints, got {widths}")
    # Each block halves the side; the last block must still see at least 2x2.
    if input_size // 2 ** (len(widths) - 1) < 2:
        raise ModelConfigError(f"{arch}: {len(widths)} blocks are too many for input_size {input_size}")
    if not 0.0 <= float(dropout) < 1.0:
        raise ModelConfigError(f"{arch}: dropout must be in [0, 1), got {dropout}")
    return FerCNN(num_classes, in_channels, widths, float(dropout), normalization)


def owns(model: nn.Module) -> bool:
    return isinstance(model, FerCNN)


def layer_fields(options: Mapping[str, Any]) -> dict[str, Any]:
    return {"blocks": len(options["widths"])}


def options_of(model: nn.Module) -> dict[str, Any]:
    return {"widths": [block.conv1.out_channels for block in model.features]}


def lrp_canonizers(model: nn.Module) -> list:
    from zennit.canonizers import SequentialMergeBatchNorm

    # Every BN directly follows its convolution, so merging in leaf order is exact.
    return [SequentialMergeBatchNorm()]
