"""Explanation methods behind one registry, with the shared pieces they need (targets, surgery).

A method is one small file in `ferxai.explain.methods` defining an `Explainer` subclass, plus one
entry in `ferxai.explain.registry.METHODS`.
"""

from ferxai.explain.base import (
    Explainer,
    ExplainerConfigError,
    UnsupportedModelError,
)
from ferxai.explain.registry import METHODS, get_method, make_explainer, method_names

__all__ = [
    "METHODS",
    "Explainer",
    "ExplainerConfigError",
    "UnsupportedModelError",
    "get_method",
    "make_explainer",
    "method_names",
]
