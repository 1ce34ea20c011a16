"""vit_small: a small torchvision VisionTransformer sized for face crops (no pretrained weights)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torchvision.models import VisionTransformer

from ferxai.models.catalog import ModelConfigError
from ferxai.models.common import InputNormalization, adopt, input_norm


class NormalizedVisionTransformer(VisionTransformer):
    input_norm: InputNormalization

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(self.input_norm(x))


def build(
    arch: str, num_classes: int, in_channels: int, input_size: int, pretrained: bool,
    normalization: Mapping[str, Sequence[float]], *,
    patch_size: int = 4, num_layers: int = 6, num_heads: int = 6, hidden_dim: int = 192,
    mlp_dim: int = 384, dropout: float = 0.0, attention_dropout: float = 0.0,
) -> nn.Module:
    if pretrained:
        raise ModelConfigError(
            f"{arch} has no pretrained weights (it is a small ViT sized for face crops, not a "
            "torchvision ImageNet model); set pretrained: false"
        )
    if patch_size <= 0 or input_size % patch_size:
        raise ModelConfigError(
            f"{arch}: patch_size {patch_size} must divide input_size {input_size}; "
            f"pick an input_size that is a multiple of {patch_size} or another patch_size option"
        )
    if hidden_dim % num_heads:
        raise ModelConfigError(f"{arch}: hidden_dim {hidden_dim} must be divisible by num_heads {num_heads}")
    model = VisionTransformer(
        image_size=input_size, patch_size=patch_size, num_layers=num_layers, num_heads=num_heads,
        hidden_dim=hidden_dim, mlp_dim=mlp_dim, dropout=dropout, attention_dropout=attention_dropout,
        num_classes=num_classes,
    )
    if in_channels != 3:
        # torchvision hard-codes an RGB patch embedding; swap it and repeat its init.
        conv = nn.Conv2d(in_channels, hidden_dim, kernel_size=patch_size, stride=patch_size)
        nn.init.trunc_normal_(conv.weight, std=math.sqrt(1 / (in_channels * patch_size * patch_size)))
        nn.init.zeros_(conv.bias)
        model.conv_proj = conv
    return adopt(model, NormalizedVisionTransformer, input_norm(normalization))


def owns(model: nn.Module) -> bool:
    return isinstance(model, VisionTransformer)


def layer_fields(options: Mapping[str, Any]) -> dict[str, Any]:
    return {"last": int(options["num_layers"]) - 1}


def options_of(model: nn.Module) -> dict[str, Any]:
    return {"num_layers": len(model.encoder.layers)}


def lrp_refusal(composite: str) -> str | None:
    return ("LRP needs dedicated rules for attention and LayerNorm (e.g. AttnLRP), which zennit "
            "0.5 does not provide; explain ViTs with a gradient or perturbation method")
