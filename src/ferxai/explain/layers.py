"""Target layers: dotted paths into a zoo model, their defaults, and maps from layer space to pixels."""

from __future__ import annotations

import difflib
import math
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ferxai.explain.base import ExplainerConfigError
from ferxai.models import catalog
from ferxai.models.zoo import built_target_layer


class LayerNotFoundError(ExplainerConfigError):
    """A dotted layer path does not name a module of the model; the message lists close names."""


def resolve_layer(model: nn.Module, path: str) -> nn.Module:
    """The submodule at dotted `path` (e.g. "layer4", "features.block3.relu2")."""
    modules = dict(model.named_modules())
    if path and path in modules:
        return modules[path]
    names = [n for n in modules if n]
    close = difflib.get_close_matches(str(path), names, n=6, cutoff=0.5)
    if not close:  # fall back on names sharing the path's last component
        tail = str(path).rsplit(".", 1)[-1]
        close = [n for n in names if n.rsplit(".", 1)[-1] == tail][:6]
    hint = f"close names: {', '.join(close)}" if close else (
        f"top-level modules: {', '.join(n for n in names if '.' not in n)}")
    raise LayerNotFoundError(f"{type(model).__name__} has no layer {path!r}; {hint}")


def default_layer_path(model: nn.Module, arch: str) -> str:
    """The catalog's conventional target layer for `arch`, as built (e.g. fer_cnn's block count)."""
    if arch not in catalog.ARCHITECTURES:
        raise LayerNotFoundError(
            f"no default target layer for model {arch!r} (known: {', '.join(catalog.ARCHITECTURES)}); "
            f"set the method's `layer` parameter to a dotted module path"
        )
    try:
        return built_target_layer(model, arch)
    except (AttributeError, TypeError) as err:
        raise LayerNotFoundError(f"cannot read the default target layer of {arch!r} from "
                                 f"{type(model).__name__}: {err}") from err


def explainer_layer(explainer: Any, param: str = "layer") -> tuple[str, nn.Module]:
    """(path, module) for an Explainer's layer parameter; None/"" means the arch default.

    Resolves in `explainer.model`; errors become ExplainerConfigError naming method and parameter.
    """
    path = explainer.params.get(param)
    try:
        if path in (None, ""):
            path = default_layer_path(explainer.model, explainer.arch)
        elif not isinstance(path, str):
            raise LayerNotFoundError(f"expected a dotted module path (str), got {type(path).__name__}")
        return path, resolve_layer(explainer.model, path)
    except LayerNotFoundError as err:
        raise ExplainerConfigError(f"method {explainer.name!r}: parameter {param!r}: {err}") from err


def layer_map_to_image(attr: torch.Tensor, size: tuple[int, int], mode: str = "bilinear") -> torch.Tensor:
    """Layer attributions -> one (N, H, W) map per image at input `size`.

    (N, C, h, w) conv maps are summed over channels; (N, T, D) token maps (ViT) are summed over
    features, a leading class token dropped when T - 1 is square, and laid out on the patch grid.
    The result is upsampled to `size` with `mode` interpolation.
    """
    if attr.ndim == 4:
        grid = attr.sum(dim=1)
    elif attr.ndim == 3:
        tokens = attr.sum(dim=2)
        t = tokens.shape[1]
        side = math.isqrt(t - 1) if t > 1 else 0
        if side * side == t - 1 and side > 0:
            tokens = tokens[:, 1:]
        else:
            side = math.isqrt(t)
            if side * side != t:
                raise ValueError(f"cannot lay {t} tokens out on a square patch grid")
        grid = tokens.reshape(-1, side, side)
    else:
        raise ValueError(f"layer attributions shaped {tuple(attr.shape)} have no spatial layout")
    kwargs = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
    return F.interpolate(grid.unsqueeze(1), size=size, mode=mode, **kwargs).squeeze(1)
