"""The architectures ferxai can build, as plain data (standard library only, no torch).

Configuration checks (``models.<name>.arch`` and ``.options``) read this module, so a dry run of
the workflow validates models without importing torch. Everything that needs torch lives in the
architecture's *implementation module*, named here by its dotted path and imported only when a
model of that family is built or explained (``ferxai.models.zoo`` does the dispatch).

Each architecture belongs to a :class:`Family`: the architectures that share one implementation
module and the same layer names (resnet18/34/50 are one family). Per family the catalog records

* ``module``: the implementation module;
* ``target_layer``: the conventional CAM target layer (the last spatial feature map), a dotted
  module path; ``{fields}`` in it are filled by the module's ``layer_fields(options)``, for
  paths that depend on the options (fer_cnn's number of blocks, the ViT's number of layers);
* ``first_layer``: the layer that sees the (normalised) pixels, where LRP applies its
  first-layer rule.

Per architecture it records the family and the keyword options of its builder with their
defaults (what ``build_model(arch, ..., **options)`` accepts, and what ``model_options`` returns).

Adding an architecture
----------------------
1. Write ``src/ferxai/models/<family>.py`` (``fer_cnn.py`` is the smallest example) with

   ``build(arch, num_classes, in_channels, input_size, pretrained, normalization, *, <options>)``
       returning a model that takes images in [0, 1] and normalises them itself in a submodule
       ``input_norm`` (:class:`ferxai.models.common.InputNormalization`); the keyword-only
       parameters are the options, with the same defaults as the catalog entry (a test checks);
   ``owns(model) -> bool``
       whether a model that does not come from ``build`` (a plain torchvision model, say) is of
       this family, so that explainers given such a model still find its family;

   and, where they apply,

   ``layer_fields(options)`` / ``options_of(model)``
       the ``{fields}`` of ``target_layer`` from the options, and the options that decide them read
       back from a built model;
   ``make_attributable(model)``
       the in-place surgery that lets hook-based attribution explain the model (one activation
       module per call, no in-place residual adds; see ``ferxai.explain.surgery``);
   ``lrp_canonizers(model)``
       the zennit canonizers for LRP, importing zennit inside the function; without it LRP
       refuses the family;
   ``lrp_refusal(composite)``
       why an LRP composite must not run on the family (None when it may).

2. Add the family (if new) to ``FAMILIES`` and the architecture to ``ARCHITECTURES`` below.

Nothing else knows architectures by name: the config schema, config checks, CAM defaults, surgery
and LRP all ask this catalog and the implementation module.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any


class ModelConfigError(ValueError):
    """A model cannot be built as configured; the message names the arch and the setting."""


@dataclass(frozen=True)
class Family:
    """Architectures sharing an implementation module and layer names."""

    name: str
    module: str
    target_layer: str
    first_layer: str


@dataclass(frozen=True)
class Architecture:
    """One buildable architecture: its family and its builder options with their defaults."""

    name: str
    family: str
    options: dict[str, Any] = field(default_factory=dict)


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("fer_cnn", "ferxai.models.fer_cnn",
           target_layer="features.block{blocks}.relu2", first_layer="features.block1.conv1"),
    Family("resnet", "ferxai.models.resnet", target_layer="layer4", first_layer="conv1"),
    Family("densenet", "ferxai.models.densenet", target_layer="features.norm5", first_layer="features.conv0"),
    Family("vit", "ferxai.models.vit",
           target_layer="encoder.layers.encoder_layer_{last}.ln_1", first_layer="conv_proj"),
)}

_VIT_SMALL = {"patch_size": 4, "num_layers": 6, "num_heads": 6, "hidden_dim": 192, "mlp_dim": 384,
              "dropout": 0.0, "attention_dropout": 0.0}

ARCHITECTURES: dict[str, Architecture] = {a.name: a for a in (
    Architecture("fer_cnn", "fer_cnn", {"widths": (32, 64, 128), "dropout": 0.3}),
    Architecture("resnet18", "resnet", {"small_stem": None}),
    Architecture("resnet34", "resnet", {"small_stem": None}),
    Architecture("resnet50", "resnet", {"small_stem": None}),
    Architecture("densenet121", "densenet", {"small_stem": None}),
    Architecture("vit_small", "vit", _VIT_SMALL),
)}


def architecture(arch: str) -> Architecture:
    """The catalog entry of `arch`; ModelConfigError naming the known ones if there is none."""
    try:
        return ARCHITECTURES[arch]
    except (KeyError, TypeError):
        raise ModelConfigError(f"unknown arch {arch!r}; choose one of {sorted(ARCHITECTURES)}") from None


def family(arch: str) -> Family:
    """The family `arch` belongs to."""
    return FAMILIES[architecture(arch).family]


def model_options(arch: str) -> dict[str, Any]:
    """The keyword options `arch` accepts, with their defaults (a copy: callers may change it)."""
    return copy.deepcopy(dict(architecture(arch).options))


def architectures_of(family_name: str) -> list[str]:
    """The architectures of a family, in catalog order."""
    return [a.name for a in ARCHITECTURES.values() if a.family == family_name]


__all__ = [
    "ARCHITECTURES", "Architecture", "FAMILIES", "Family", "ModelConfigError",
    "architecture", "architectures_of", "family", "model_options",
]
