"""Every explanation metric as plain data: family, what it needs, direction, parameters.

The metrics' counterpart of `ferxai.explain.catalog` (whose parameter types it reuses), imported by
config validation, so standard library only. Adding a metric: its function in a module of
`ferxai.assess` plus one `Metric(...)` entry below.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Mapping

from ferxai.explain.catalog import Choice, Int, Param
from ferxai.explain.params import ExplainerConfigError

FAMILIES: tuple[str, ...] = ("localisation", "faithfulness", "complexity")
# what a metric needs besides the maps: ground-truth masks (localisation), the model and the
# images (faithfulness), nothing (complexity)
NEEDS: tuple[str, ...] = ("masks", "model")


class MetricConfigError(ExplainerConfigError):
    """A metric name or parameter the catalog does not allow."""


@dataclass(frozen=True)
class Metric:
    """One metric: `implementation` is "module:function" taking (maps, [masks,] **params) -> (N,).

    direction  "higher" or "lower": which end is better (for complexity: more concentrated)
    needs      inputs besides the maps ("masks": ground-truth masks of the images)
    """

    name: str
    family: str
    implementation: str
    direction: str
    needs: tuple[str, ...] = ()
    params: Mapping[str, Param] = field(default_factory=dict)

    @property
    def defaults(self) -> dict[str, Any]:
        return {key: copy.deepcopy(p.default) for key, p in self.params.items()}

    def resolve(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overridden by `params`; an unknown name or a value out of range is an error
        naming the metric, the parameter, the allowed values and the value given."""
        unknown = sorted(set(params) - set(self.params))
        if unknown:
            raise MetricConfigError(f"metric {self.name!r}: unknown parameter(s) {unknown}; valid: "
                                    f"{', '.join(sorted(self.params)) or 'none'}", param=unknown[0])
        merged = self.defaults
        for key, value in params.items():
            spec = self.params[key]
            if not spec.accepts(value):
                raise MetricConfigError(f"metric {self.name!r}: parameter {key!r} must be {spec.allowed()}, "
                                        f"got {value!r}", param=key)
            merged[key] = spec.plain(copy.deepcopy(value))
        return merged


_A = "ferxai.assess"
# pixel-removal curves (ferxai.assess.faithfulness; its BASELINES and ORDERS, stated here
# without importing torch)
_REMOVAL = {"steps": Int(20), "baseline": Choice("black", ("black", "mean")), "order": Choice("most", ("most", "least"))}

_ENTRIES: tuple[Metric, ...] = (
    Metric("pointing_game", "localisation", f"{_A}.localisation:pointing_game", "higher", ("masks",),
           {"tolerance": Int(0, low=0)}),
    Metric("relevance_mass", "localisation", f"{_A}.localisation:relevance_mass", "higher", ("masks",)),
    Metric("relevance_rank", "localisation", f"{_A}.localisation:relevance_rank", "higher", ("masks",)),
    Metric("auroc", "localisation", f"{_A}.localisation:auroc", "higher", ("masks",)),
    Metric("deletion", "faithfulness", f"{_A}.faithfulness:deletion_auc", "lower", ("model",), _REMOVAL),
    Metric("insertion", "faithfulness", f"{_A}.faithfulness:insertion_auc", "higher", ("model",), _REMOVAL),
    Metric("faithfulness_correlation", "faithfulness", f"{_A}.faithfulness:faithfulness_correlation", "higher",
           ("model",), {"subset": Int(64), "samples": Int(50, low=2), "baseline": Choice("black", ("black", "mean")),
                        "seed": Int(0, low=0)}),
    Metric("sparseness", "complexity", f"{_A}.complexity:sparseness", "higher"),
    Metric("entropy", "complexity", f"{_A}.complexity:entropy", "lower"),
)
METRICS: dict[str, Metric] = {m.name: m for m in _ENTRIES}
assert all(m.family in FAMILIES and set(m.needs) <= set(NEEDS) for m in _ENTRIES)


def get(name: str) -> Metric:
    try:
        return METRICS[name]
    except KeyError:
        raise MetricConfigError(f"unknown metric {name!r}; known: {', '.join(METRICS)}") from None


def load(name: str):
    """The metric's function (imports its module: numpy and scipy, or torch for faithfulness)."""
    import importlib

    module, function = get(name).implementation.split(":")
    return getattr(importlib.import_module(module), function)


__all__ = ["FAMILIES", "METRICS", "Metric", "MetricConfigError", "get", "load"]
