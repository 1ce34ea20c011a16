"""Explanation methods behind one registry, with the shared pieces they need (targets, surgery).

A method is one small file in `ferxai.explain.methods` defining an `Explainer` subclass, plus one
entry in `ferxai.explain.catalog` (its parameters, their checks and its cost model).

Names are resolved lazily: every workflow job is a fresh process, and the light steps (selection,
gather, pictures) should not pay for importing torch through this package.
"""

from importlib import import_module

_EXPORTS = {
    "Explainer": "ferxai.explain.base",
    "ExplainerConfigError": "ferxai.explain.params",
    "UnsupportedModelError": "ferxai.explain.base",
    "METHODS": "ferxai.explain.registry",
    "get_method": "ferxai.explain.registry",
    "make_explainer": "ferxai.explain.registry",
    "method_names": "ferxai.explain.registry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ferxai.explain' has no attribute {name!r}")
