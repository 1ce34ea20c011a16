"""Method name -> implementation, read from `ferxai.explain.catalog`.

Each catalog entry names its class as "module:Class", imported only when that method is used: a
broken or missing optional library cannot take the other methods down, and listing the methods
imports no torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ferxai.explain.catalog import METHODS, method_names
from ferxai.explain.params import ExplainerConfigError

if TYPE_CHECKING:
    import torch.nn as nn

    from ferxai.explain.base import Explainer

__all__ = ["METHODS", "get_method", "make_explainer", "method_names"]


def get_method(name: str) -> type[Explainer]:
    if name not in METHODS:
        raise ExplainerConfigError(f"unknown explanation method {name!r}; known: {', '.join(method_names())}",
                                   method=name)
    module_name, cls_name = METHODS[name].implementation.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ExplainerConfigError(f"method {name!r} is unavailable: cannot import {module_name} ({err})",
                                   method=name) from err
    return getattr(module, cls_name)


def make_explainer(name: str, model: nn.Module, **params: Any) -> Explainer:
    """Build the named method for `model`; keyword parameters as in Explainer.__init__."""
    return get_method(name)(model, **params)
