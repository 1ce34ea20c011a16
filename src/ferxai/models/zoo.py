"""Model zoo: every architecture the workflow can train, behind one `build_model` call.

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
  then defers to torchvision's ``forward``.
* **Small inputs get small stems.** At 48 px torchvision's ImageNet stem (7x7 stride-2 conv +
  max-pool) leaves a 2x2 final feature map, useless for Grad-CAM; at ``input_size <= 64`` the
  stem becomes a 3x3 stride-1 conv without the max-pool (ResNet ``layer4`` is then 6x6 at 48 px).
* **No in-place ReLUs**, because attribution methods that hook activations (guided backprop,
  DeepLIFT) fail or silently go wrong on in-place ops.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torchvision
from torch import nn
from torch.nn import functional as F
from torchvision.models import DenseNet, ResNet, VisionTransformer

log = logging.getLogger(__name__)

# Largest input side that gets the small-input stem (config docs: "below 65 px").
SMALL_STEM_MAX_INPUT = 64

# torchvision's ImageNet statistics; grey models use the mean over RGB.
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


class ModelConfigError(ValueError):
    """A model cannot be built as configured; the message names the arch and the setting."""


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


def _check_normalization(normalization: Mapping[str, Any], in_channels: int, arch: str) -> None:
    for key in ("mean", "std"):
        vals = normalization.get(key) if isinstance(normalization, Mapping) else None
        if not isinstance(vals, (list, tuple)) or len(vals) != in_channels:
            raise ModelConfigError(
                f"{arch}: normalization.{key} must be a list of {in_channels} numbers "
                f"(one per input channel), got {vals!r}"
            )


# Subclasses whose only change is normalising the input first. They add no parameters of
# their own besides `input_norm`, so torchvision's module names and weights are unchanged.
class NormalizedResNet(ResNet):
    input_norm: InputNormalization

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(self.input_norm(x))


class NormalizedDenseNet(DenseNet):
    input_norm: InputNormalization

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # torchvision's forward, except that its final ReLU is not in-place: in-place it would
        # overwrite `features.norm5`'s output, which Grad-CAM hooks read and differentiate.
        out = F.relu(self.features(self.input_norm(x)))
        out = torch.flatten(F.adaptive_avg_pool2d(out, (1, 1)), 1)
        return self.classifier(out)


class NormalizedVisionTransformer(VisionTransformer):
    input_norm: InputNormalization

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(self.input_norm(x))


def _adopt(model: nn.Module, cls: type[nn.Module], norm: InputNormalization) -> nn.Module:
    """Turn a torchvision model into its normalising subclass in place.

    Re-classing (rather than constructing the subclass) lets torchvision's own builders do the
    construction and any pretrained-weight loading, including their key remapping.
    """
    if not isinstance(model, cls.__mro__[1]):
        raise TypeError(f"cannot turn {type(model).__name__} into {cls.__name__}")
    model.__class__ = cls
    model.input_norm = norm
    return model


def _no_inplace_relu(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False


# --------------------------------------------------------------------------- fer_cnn


class FerCNN(nn.Module):
    """Compact VGG-style classifier for small grey faces.

    Blocks of [conv3x3-BN-ReLU x2, maxpool2]; each ReLU is its own non-inplace module so that
    attribution methods can hook every activation separately. Layer paths:
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


def _build_fer_cnn(
    num_classes: int, in_channels: int, input_size: int, pretrained: bool,
    normalization: Mapping[str, Sequence[float]], *,
    widths: Sequence[int] = (32, 64, 128), dropout: float = 0.3,
) -> nn.Module:
    if pretrained:
        raise ModelConfigError("fer_cnn has no pretrained weights; set pretrained: false")
    widths = [int(w) for w in widths]
    if not widths or any(w <= 0 for w in widths):
        raise ModelConfigError(f"fer_cnn: widths must be a non-empty list of positive ints, got {widths}")
    # Each block halves the side; the last block must still see at least 2x2.
    if input_size // 2 ** (len(widths) - 1) < 2:
        raise ModelConfigError(f"fer_cnn: {len(widths)} blocks are too many for input_size {input_size}")
    if not 0.0 <= float(dropout) < 1.0:
        raise ModelConfigError(f"fer_cnn: dropout must be in [0, 1), got {dropout}")
    return FerCNN(num_classes, in_channels, widths, float(dropout), normalization)


# --------------------------------------------------------------------------- torchvision CNNs


def _tv_builder(name: str) -> Callable[..., nn.Module]:
    # Looked up at call time (not imported once) so tests can substitute a builder.
    return getattr(torchvision.models, name)


def _call_tv_builder(arch: str, pretrained: bool, **kwargs: Any) -> nn.Module:
    builder = _tv_builder(arch)
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


def _grey_from_rgb(conv: nn.Conv2d) -> nn.Conv2d:
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


def _small_stem_wanted(input_size: int, small_stem: bool | None) -> bool:
    if small_stem is None:
        return input_size <= SMALL_STEM_MAX_INPUT
    return bool(small_stem)


def _new_stem_conv(in_channels: int, out_channels: int) -> nn.Conv2d:
    conv = nn.Conv2d(in_channels, out_channels, 3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    return conv


def _adapt_stem(
    arch: str, old: nn.Conv2d, in_channels: int, small: bool, pretrained: bool
) -> nn.Conv2d | None:
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
        return _grey_from_rgb(old)
    conv = nn.Conv2d(in_channels, old.out_channels, old.kernel_size, old.stride, old.padding, bias=False)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    return conv


def _build_resnet(
    arch: str, num_classes: int, in_channels: int, input_size: int, pretrained: bool,
    normalization: Mapping[str, Sequence[float]], *, small_stem: bool | None = None,
) -> nn.Module:
    model = _call_tv_builder(arch, pretrained, num_classes=num_classes)
    small = _small_stem_wanted(input_size, small_stem)
    conv1 = _adapt_stem(arch, model.conv1, in_channels, small, pretrained)
    if conv1 is not None:
        model.conv1 = conv1
    if small:
        model.maxpool = nn.Identity()
    if pretrained:
        model.fc = nn.Linear(model.fc.in_features, num_classes)
    _no_inplace_relu(model)
    return _adopt(model, NormalizedResNet, InputNormalization(normalization["mean"], normalization["std"]))


def _build_densenet(
    arch: str, num_classes: int, in_channels: int, input_size: int, pretrained: bool,
    normalization: Mapping[str, Sequence[float]], *, small_stem: bool | None = None,
) -> nn.Module:
    model = _call_tv_builder(arch, pretrained, num_classes=num_classes)
    small = _small_stem_wanted(input_size, small_stem)
    conv0 = _adapt_stem(arch, model.features.conv0, in_channels, small, pretrained)
    if conv0 is not None:
        model.features.conv0 = conv0
    if small:
        model.features.pool0 = nn.Identity()
    if pretrained:
        model.classifier = nn.Linear(model.classifier.in_features, num_classes)
        nn.init.zeros_(model.classifier.bias)
    _no_inplace_relu(model)
    return _adopt(model, NormalizedDenseNet, InputNormalization(normalization["mean"], normalization["std"]))


def _cnn_builder(fn: Callable[..., nn.Module], arch: str) -> Callable[..., nn.Module]:
    def build(*args: Any, **kwargs: Any) -> nn.Module:
        return fn(arch, *args, **kwargs)

    # Keep the option signature visible to build_model's option check.
    build.__signature__ = inspect.signature(fn).replace(  # type: ignore[attr-defined]
        parameters=list(inspect.signature(fn).parameters.values())[1:]
    )
    build.__name__ = f"build_{arch}"
    return build


# --------------------------------------------------------------------------- ViT


def _build_vit_small(
    num_classes: int, in_channels: int, input_size: int, pretrained: bool,
    normalization: Mapping[str, Sequence[float]], *,
    patch_size: int = 4, num_layers: int = 6, num_heads: int = 6, hidden_dim: int = 192,
    mlp_dim: int = 384, dropout: float = 0.0, attention_dropout: float = 0.0,
) -> nn.Module:
    if pretrained:
        raise ModelConfigError(
            "vit_small has no pretrained weights (it is a small ViT sized for face crops, not a "
            "torchvision ImageNet model); set pretrained: false"
        )
    if patch_size <= 0 or input_size % patch_size:
        raise ModelConfigError(
            f"vit_small: patch_size {patch_size} must divide input_size {input_size}; "
            f"pick an input_size that is a multiple of {patch_size} or another patch_size option"
        )
    if hidden_dim % num_heads:
        raise ModelConfigError(f"vit_small: hidden_dim {hidden_dim} must be divisible by num_heads {num_heads}")
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
    return _adopt(model, NormalizedVisionTransformer,
                  InputNormalization(normalization["mean"], normalization["std"]))


# --------------------------------------------------------------------------- registry

# name -> builder(num_classes, in_channels, input_size, pretrained, normalization, **options)
ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "fer_cnn": _build_fer_cnn,
    "resnet18": _cnn_builder(_build_resnet, "resnet18"),
    "resnet34": _cnn_builder(_build_resnet, "resnet34"),
    "resnet50": _cnn_builder(_build_resnet, "resnet50"),
    "densenet121": _cnn_builder(_build_densenet, "densenet121"),
    "vit_small": _build_vit_small,
}

# Conventional Grad-CAM target per architecture: the last spatial feature map.
DEFAULT_TARGET_LAYERS: dict[str, str] = {
    "fer_cnn": "features.block{last}.relu2",
    "resnet18": "layer4",
    "resnet34": "layer4",
    "resnet50": "layer4",
    "densenet121": "features.norm5",
    "vit_small": "encoder.layers.encoder_layer_{last}.ln_1",
}


def model_options(arch: str) -> dict[str, Any]:
    """The keyword options `arch` accepts, with their defaults."""
    builder = _builder(arch)
    return {
        p.name: p.default
        for p in inspect.signature(builder).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def default_target_layer(arch: str, options: Mapping[str, Any] | None = None) -> str:
    """Dotted path of the conventional Grad-CAM layer of `arch` built with `options`."""
    options = {**model_options(arch), **(options or {})}
    path = DEFAULT_TARGET_LAYERS[arch]
    if arch == "fer_cnn":
        return path.format(last=len(options["widths"]))
    if arch == "vit_small":
        return path.format(last=int(options["num_layers"]) - 1)
    return path


def _builder(arch: str) -> Callable[..., nn.Module]:
    try:
        return ARCHITECTURES[arch]
    except KeyError:
        raise ModelConfigError(f"unknown arch {arch!r}; choose one of {sorted(ARCHITECTURES)}") from None


def build_model(
    arch: str,
    num_classes: int,
    in_channels: int = 1,
    input_size: int = 48,
    pretrained: bool = False,
    normalization: Mapping[str, Sequence[float]] | None = None,
    **options: Any,
) -> nn.Module:
    """Build `arch` for `num_classes` classes on `in_channels` x `input_size`^2 images in [0, 1].

    `normalization` ({"mean": [...], "std": [...]}, one value per channel) defaults to
    :func:`default_normalization`. `options` are the architecture's keyword options
    (see :func:`model_options`), e.g. ``widths``/``dropout`` for fer_cnn, ``small_stem`` for
    ResNet/DenseNet, ``patch_size``/``num_layers``/... for vit_small.
    """
    builder = _builder(arch)
    if in_channels not in (1, 3):
        raise ModelConfigError(f"{arch}: in_channels must be 1 or 3, got {in_channels}")
    if int(num_classes) < 2:
        raise ModelConfigError(f"{arch}: num_classes must be at least 2, got {num_classes}")
    if int(input_size) < 16:
        raise ModelConfigError(f"{arch}: input_size must be at least 16, got {input_size}")
    allowed = model_options(arch)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ModelConfigError(f"{arch}: unknown model option(s) {unknown}; allowed: {sorted(allowed)}")
    norm = dict(normalization) if normalization is not None else default_normalization(in_channels, pretrained)
    _check_normalization(norm, in_channels, arch)
    model = builder(int(num_classes), int(in_channels), int(input_size), bool(pretrained), norm, **options)
    return model
