"""Model zoo: every architecture of the catalog behind one `build_model` call, and the per-family
facts that explainers ask for (default CAM layer, first layer, surgery, LRP canonizers).

What an architecture *is* lives in one place: its entry in `ferxai.models.catalog` (plain data)
and its implementation module (``ferxai.models.fer_cnn``, ``.resnet``, ``.densenet``, ``.vit``).
This module only dispatches, importing an implementation module when a model of that family is
built or explained, so fer_cnn never pays for importing torchvision. The design decisions every
model follows are in `ferxai.models.common`.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import ModuleType
from typing import Any

from torch import nn

from ferxai.models import catalog
from ferxai.models.catalog import Family, ModelConfigError, model_options
from ferxai.models.common import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    SMALL_STEM_MAX_INPUT,
    InputNormalization,
    PretrainedWeightsError,
    check_normalization,
    default_normalization,
    model_normalization,
)
from ferxai.models.fer_cnn import FerCNN


def implementation(family: Family | str) -> ModuleType:
    """The implementation module of a family (a Family, or an arch or family name)."""
    if isinstance(family, str):
        family = catalog.FAMILIES[family] if family in catalog.FAMILIES else catalog.family(family)
    return importlib.import_module(family.module)


class _Builders(Mapping[str, Callable[..., nn.Module]]):
    """arch -> builder(num_classes, in_channels, input_size, pretrained, normalization, **options).

    A mapping over the catalog whose builders import their implementation module on first use.
    """

    def __getitem__(self, arch: str) -> Callable[..., nn.Module]:
        if arch not in catalog.ARCHITECTURES:
            raise KeyError(arch)
        return functools.partial(implementation(arch).build, arch)

    def __iter__(self) -> Iterator[str]:
        return iter(catalog.ARCHITECTURES)

    def __len__(self) -> int:
        return len(catalog.ARCHITECTURES)


ARCHITECTURES: Mapping[str, Callable[..., nn.Module]] = _Builders()


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
    allowed = model_options(arch)  # unknown arch: ModelConfigError before anything else
    if in_channels not in (1, 3):
        raise ModelConfigError(f"{arch}: in_channels must be 1 or 3, got {in_channels}")
    if int(num_classes) < 2:
        raise ModelConfigError(f"{arch}: num_classes must be at least 2, got {num_classes}")
    if int(input_size) < 16:
        raise ModelConfigError(f"{arch}: input_size must be at least 16, got {input_size}")
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ModelConfigError(f"{arch}: unknown model option(s) {unknown}; allowed: {sorted(allowed)}")
    norm = dict(normalization) if normalization is not None else default_normalization(in_channels, pretrained)
    check_normalization(norm, in_channels, arch)
    build = implementation(arch).build
    return build(arch, int(num_classes), int(in_channels), int(input_size), bool(pretrained), norm, **options)


# --------------------------------------------------------------------------- per-family facts


def default_target_layer(arch: str, options: Mapping[str, Any] | None = None) -> str:
    """Dotted path of the conventional Grad-CAM layer of `arch` built with `options`."""
    family = catalog.family(arch)
    fields = getattr(implementation(family), "layer_fields", None)
    if fields is None:
        return family.target_layer
    return family.target_layer.format(**fields({**model_options(arch), **(options or {})}))


def built_target_layer(model: nn.Module, arch: str) -> str:
    """`default_target_layer` of `arch` for a built `model` (options read back from the model)."""
    options_of = getattr(implementation(arch), "options_of", None)
    return default_target_layer(arch, options_of(model) if options_of is not None else None)


def family_of(model: nn.Module) -> Family | None:
    """The catalog family of `model`, or None for a model of no known family.

    A zoo model's class (or a base of it) is defined in its implementation module, which is
    found without importing the other families; other models (a plain torchvision ResNet) are
    offered to every family's ``owns``.
    """
    by_module = {f.module: f for f in catalog.FAMILIES.values()}
    for cls in type(model).__mro__:
        if cls.__module__ in by_module:
            return by_module[cls.__module__]
    for family in catalog.FAMILIES.values():
        if implementation(family).owns(model):
            return family
    return None


def make_attributable(model: nn.Module) -> None:
    """The family's in-place surgery for hook-based attribution (see ferxai.explain.surgery).

    A model of no known family gets every family's surgery: each only rewrites its own block
    classes, wherever they sit in the model.
    """
    family = family_of(model)
    families = [family] if family is not None else list(catalog.FAMILIES.values())
    for fam in families:
        surgery = getattr(implementation(fam), "make_attributable", None)
        if surgery is not None:
            surgery(model)


__all__ = [
    "ARCHITECTURES", "FerCNN", "IMAGENET_MEAN", "IMAGENET_STD", "InputNormalization", "ModelConfigError",
    "PretrainedWeightsError", "SMALL_STEM_MAX_INPUT", "build_model", "built_target_layer",
    "default_normalization", "default_target_layer", "family_of", "implementation", "make_attributable",
    "model_normalization", "model_options",
]
