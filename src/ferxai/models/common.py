"""What every architecture module shares: input normalisation, errors, small-input stems.

Design decisions that later stages rely on:

* **Models take images in [0, 1].** Input normalisation lives *inside* the model, in a
  submodule named ``input_norm`` (mean/std stored as buffers, so a ``state_dict`` is
  self-contained). Explainers therefore perturb and attribute in image space, and
  training/evaluation never need to know the statistics.
* **Module names stay torchvision's, at the top level** (``conv1``, ``layer4``,
  ``features.denseblock4``, ``encoder.layers.encoder_layer_5`` ...), so a target layer given
  as a dotted path in the config resolves with ``model.get_submodule(path)``. This is why
  normalisation is not a wrapper module (a wrapper would prefix every name) and not a
  forward pre-hook (a hook on the root runs before hooks that attribution libraries install
  there, e.g. DeepLIFT's baseline concatenation, so baselines would skip normalisation).
  Instead each torchvision model is given a thin subclass whose ``forward`` normalises and
  then defers to torchvision's ``forward`` (:func:`adopt`).
* **Small inputs get small stems.** At 48 px torchvision's ImageNet stem (7x7 stride-2 conv +
  max-pool) leaves a 2x2 final feature map, useless for Grad-CAM; at ``input_size <= 64`` the
  stem becomes a 3x3 stride-1 conv without the max-pool (ResNet ``layer4`` is then 6x6 at 48 px).
* **No in-place ReLUs**, because attribution methods that hook activations (guided backprop,
  DeepLIFT) fail or silently go wrong on in-place ops.

torchvision is imported only inside :func:`call_torchvision_builder`: the compact fer_cnn is
built from this module without it, and importing torchvision pulls in much of ``torch._dynamo``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ferxai.models.catalog import ModelConfigError

log = logging.getLogger(__name__)

# Largest input side that gets the small-input stem (config docs: "below 65 px").
SMALL_STEM_MAX_INPUT = 64

# torchvision's ImageNet statistics; grey models use the mean over RGB.
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


class PretrainedWeightsError(RuntimeError):
    """ImageNet weights were requested but could not be obtained."""


# --------------------------------------------------------------------------- normalisation


class InputNormalization(nn.Module):
    """``(x - mean) / std`` per channel, with the statistics saved in the state dict."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        if len(mean) != len(std):
            raise ModelConfigError(f"normalization mean {list(mean)} and std {list(std)} differ in length")
        if any(float(s) <= 0 for s in std):
            raise ModelConfigError(f"normalization std must be positive, got {list(std)}")
        self.register_buffer("mean", torch.tensor([float(m) for m in mean]).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor([float(s) for s in std]).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.mean.shape[1]:
            raise ValueError(
                f"model expects images shaped (N, {self.mean.shape[1]}, H, W) in [0, 1], got {tuple(x.shape)}"
            )
        return (x - self.mean) / self.std

    def as_dict(self) -> dict[str, list[float]]:
        """The statistics in checkpoint-meta form: ``{"mean": [...], "std": [...]}``."""
        return {"mean": self.mean.flatten().tolist(), "std": self.std.flatten().tolist()}

    def extra_repr(self) -> str:
        d = self.as_dict()
        return f"mean={[round(v, 4) for v in d['mean']]}, std={[round(v, 4) for v in d['std']]}"


def default_normalization(in_channels: int, pretrained: bool = False) -> dict[str, list[float]]:
    """0.5/0.5 per channel when training from scratch; ImageNet statistics for pretrained models."""
    if not pretrained:
        return {"mean": [0.5] * in_channels, "std": [0.5] * in_channels}
    if in_channels == 3:
        return {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
    return {"mean": [sum(IMAGENET_MEAN) / 3] * in_channels, "std": [sum(IMAGENET_STD) / 3] * in_channels}


def model_normalization(model: nn.Module) -> dict[str, list[float]]:
    """The normalisation a ferxai model applies, for writing into checkpoint meta."""
    norm = getattr(model, "input_norm", None)
    if not isinstance(norm, InputNormalization):
        raise TypeError(f"{type(model).__name__} has no `input_norm`; build it with ferxai.models.build_model")
    return norm.as_dict()


def check_normalization(normalization: Mapping[str, Any], in_channels: int, arch: str) -> None:
    for key in ("mean", "std"):
        vals = normalization.get(key) if isinstance(normalization, Mapping) else None
        if not isinstance(vals, (list, tuple)) or len(vals) != in_channels:
            raise ModelConfigError(
                f"{arch}: normalization.{key} must be a list of {in_channels} numbers "
                f"(one per input channel), got {vals!r}"
            )


def input_norm(normalization: Mapping[str, Sequence[float]]) -> InputNormalization:
    return InputNormalization(normalization["mean"], normalization["std"])


def adopt(model: nn.Module, cls: type[nn.Module], norm: InputNormalization) -> nn.Module:
    """Turn a torchvision model into its normalising subclass `cls` in place.

    Re-classing (rather than constructing the subclass) lets torchvision's own builders do the
    construction and any pretrained-weight loading, including their key remapping.
    """
    if not isinstance(model, cls.__mro__[1]):
        raise TypeError(f"cannot turn {type(model).__name__} into {cls.__name__}")
    model.__class__ = cls
    model.input_norm = norm
    return model


def no_inplace_relu(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False


def fresh_relu() -> nn.ReLU:
    """A ReLU module of its own, for surgery that gives each activation call its own module."""
    return nn.ReLU(inplace=False)


# --------------------------------------------------------------------------- torchvision builders


def torchvision_builder(name: str) -> Callable[..., nn.Module]:
    import torchvision

    # Looked up at call time (not imported once) so tests can substitute a builder.
    return getattr(torchvision.models, name)


def call_torchvision_builder(arch: str, pretrained: bool, **kwargs: Any) -> nn.Module:
    builder = torchvision_builder(arch)
    if not pretrained:
        return builder(weights=None, **kwargs)
    try:
        return builder(weights="DEFAULT")
    except Exception as exc:  # network, proxy, hash and cache errors all look different
        raise PretrainedWeightsError(
            f"{arch}: the torchvision ImageNet weights could not be downloaded or loaded "
            f"({type(exc).__name__}: {exc}). Set `pretrained: false` to train from scratch, or "
            f"supply trained weights with `model.checkpoint`. (Weights already in the torch hub "
            f"cache, $TORCH_HOME/hub/checkpoints, are used without a download.)"
        ) from exc


# --------------------------------------------------------------------------- small-input stems


def grey_from_rgb(conv: nn.Conv2d) -> nn.Conv2d:
    """A 1-channel copy of an RGB conv whose kernel is the sum over RGB.

    Summing (not averaging) keeps the response to a grey image equal to the RGB response to
    the same image replicated over three channels.
    """
    new = nn.Conv2d(1, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, conv.groups, conv.bias is not None)
    with torch.no_grad():
        new.weight.copy_(conv.weight.sum(dim=1, keepdim=True))
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    return new


def small_stem_wanted(input_size: int, small_stem: bool | None) -> bool:
    if small_stem is None:
        return input_size <= SMALL_STEM_MAX_INPUT
    return bool(small_stem)


def _new_stem_conv(in_channels: int, out_channels: int) -> nn.Conv2d:
    conv = nn.Conv2d(in_channels, out_channels, 3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    return conv


def adapt_stem(arch: str, old: nn.Conv2d, in_channels: int, small: bool, pretrained: bool) -> nn.Conv2d | None:
    """The replacement first conv, or None when the torchvision one is kept as is."""
    if small:
        if pretrained:
            log.warning(
                "%s: small-input stem (3x3 stride-1 conv, no max-pool) is re-initialised; only the "
                "layers after the stem keep their ImageNet weights", arch,
            )
        return _new_stem_conv(in_channels, old.out_channels)
    if in_channels == old.in_channels:
        return None
    if pretrained:
        return grey_from_rgb(old)
    conv = nn.Conv2d(in_channels, old.out_channels, old.kernel_size, old.stride, old.padding, bias=False)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    return conv
