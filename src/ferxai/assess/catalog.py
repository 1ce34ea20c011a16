"""Every explanation metric as plain data: family, what it needs, direction, parameters.

The metrics' counterpart of `ferxai.explain.catalog` (whose parameter types it reuses), imported by
config validation, so standard library only. Adding a metric: one file in `ferxai.assess.metrics`
(its function, called as the family's convention in that package's docstring says) plus one
`Metric(...)` entry below.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ferxai.explain.catalog import Bool, Choice, Float, Int, Param
from ferxai.explain.params import ExplainerConfigError

# Each family is one job per (experiment, condition, method) (faithfulness and sensitivity: they run
# the model) or one per experiment (the map-only families: their compute per method is milliseconds).
FAMILIES: tuple[str, ...] = ("localisation", "faithfulness", "sensitivity", "complexity")
# what a metric needs besides the maps: ground-truth masks (localisation), the model with the
# images and targets (faithfulness), the method itself to recompute maps (sensitivity), nothing
# (complexity)
NEEDS: tuple[str, ...] = ("masks", "model", "explainer")


class MetricConfigError(ExplainerConfigError):
    """A metric name or parameter the catalog does not allow."""


@dataclass(frozen=True)
class Percentiles(Param):
    """A non-empty list of distinct integers in (0, 100)."""

    def allowed(self) -> str:
        return "a non-empty list of distinct integers in (0, 100)"

    def accepts(self, value: Any) -> bool:
        return (isinstance(value, (list, tuple)) and len(value) > 0 and len(set(value)) == len(value)
                and all(isinstance(v, int) and not isinstance(v, bool) and 0 < v < 100 for v in value))

    def plain(self, value: Any) -> Any:
        return [int(v) for v in value]


@dataclass(frozen=True)
class Metric:
    """One metric: `implementation` is "module:function" (ferxai.assess.metrics' conventions).

    direction  "higher" or "lower": which end is better (for complexity: more concentrated);
               `reversed_by` names a parameter value that turns it around (deletion with
               `order: least` removes the least relevant pixels first: higher is better then)
    needs      inputs besides the maps ("masks": ground-truth masks; "model": the model)
    """

    name: str
    family: str
    implementation: str
    direction: str
    needs: tuple[str, ...] = ()
    params: Mapping[str, Param] = field(default_factory=dict)
    reversed_by: tuple[str, Any] | None = None
    # model inputs per image with these (resolved) parameters: sizes the throughput preflight
    passes: Callable[[Mapping[str, Any]], int] = lambda params: 1

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

    def direction_for(self, params: Mapping[str, Any]) -> str:
        """Which end is better with these (resolved) parameters."""
        if self.reversed_by and params.get(self.reversed_by[0]) == self.reversed_by[1]:
            return "lower" if self.direction == "higher" else "higher"
        return self.direction


_M = "ferxai.assess.metrics"
# pixel-removal curves (ferxai.assess.removal; its BASELINES and ORDERS, stated here without
# importing torch)
_REMOVAL = {"steps": Int(20), "baseline": Choice("black", ("black", "mean")), "order": Choice("most", ("most", "least"))}
_LEAST = ("order", "least")

_ENTRIES: tuple[Metric, ...] = (
    Metric("pointing_game", "localisation", f"{_M}.pointing_game:pointing_game", "higher", ("masks",),
           {"tolerance": Int(0, low=0)}),
    Metric("relevance_mass", "localisation", f"{_M}.relevance_mass:relevance_mass", "higher", ("masks",)),
    Metric("relevance_rank", "localisation", f"{_M}.relevance_rank:relevance_rank", "higher", ("masks",)),
    Metric("auroc", "localisation", f"{_M}.auroc:auroc", "higher", ("masks",)),
    Metric("deletion", "faithfulness", f"{_M}.deletion:deletion", "lower", ("model",), _REMOVAL, _LEAST,
           lambda p: p["steps"] + 1),
    Metric("insertion", "faithfulness", f"{_M}.insertion:insertion", "higher", ("model",), _REMOVAL, _LEAST,
           lambda p: p["steps"] + 1),
    Metric("faithfulness_correlation", "faithfulness", f"{_M}.faithfulness_correlation:faithfulness_correlation",
           "higher", ("model",), {"subset": Int(64), "samples": Int(50, low=2),
                                  "baseline": Choice("black", ("black", "mean")), "seed": Int(0, low=0)},
           passes=lambda p: p["samples"] + 1),
    Metric("road", "faithfulness", f"{_M}.road:road", "higher", ("model",),
           {"percentiles": Percentiles("list", (10, 20, 30, 40, 50, 60, 70, 80, 90)),
            "noise": Float(0.01, 0.0), "seed": Int(0, low=0)},
           passes=lambda p: 2 * len(p["percentiles"]) + 1),
    Metric("infidelity", "faithfulness", f"{_M}.infidelity:infidelity", "lower", ("model",),
           {"noise": Float(0.1, 0.0, low_open=True), "samples": Int(16), "normalize": Bool(True),
            "seed": Int(0, low=0)},
           passes=lambda p: p["samples"] + 1),
    Metric("max_sensitivity", "sensitivity", f"{_M}.max_sensitivity:max_sensitivity", "lower", ("explainer",),
           {"radius": Float(0.02, 0.0, low_open=True), "samples": Int(4), "max_images": Int(4), "seed": Int(0, low=0)},
           passes=lambda p: p["samples"] + 1),
    Metric("sparseness", "complexity", f"{_M}.sparseness:sparseness", "higher"),
    Metric("entropy", "complexity", f"{_M}.entropy:entropy", "lower"),
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


__all__ = ["FAMILIES", "METRICS", "Metric", "MetricConfigError", "Percentiles", "get", "load"]
