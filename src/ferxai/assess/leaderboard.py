"""From per-image scores to a leaderboard that does not invent a ranking, and each metric's reliability.

Input everywhere: for one metric (and condition), per method an array of per-image values over
the *same* images in the same order (NaN where the metric has no answer for an image).

* `rank_with_ties`: a method's rank is 1 + the number of methods whose 95 % bootstrap interval lies
  entirely on the better side of its own, so methods the intervals cannot separate share a rank
  (competition ranking over "significantly better than").
* `reliability`: whether the metric puts the `random` control below every model-based method with
  separated intervals; where it ranks the `edge` control; and how stable its ordering of methods
  is when the images are resampled: the mean Kendall tau between the ordering on all images and
  the orderings on bootstrap resamples (the same resample for every method), 1 for a metric whose
  ordering no resample changes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Mapping

import numpy as np
from scipy import stats

from ferxai.assess.intervals import Estimate, bootstrap_mean, separated

CONTROLS = ("random", "edge", "center")


def estimates(values: Mapping[str, np.ndarray], *, resamples: int = 1000, seed: int = 0) -> dict[str, Estimate]:
    return {method: bootstrap_mean(v, resamples=resamples, seed=seed) for method, v in values.items()}


def better(a: Estimate, b: Estimate, direction: str) -> bool:
    """a is significantly better than b."""
    if not separated(a, b):
        return False
    return a.mean > b.mean if direction == "higher" else a.mean < b.mean


def rank_with_ties(found: Mapping[str, Estimate], direction: str) -> dict[str, int]:
    if direction not in ("higher", "lower"):
        raise ValueError(f"direction must be 'higher' or 'lower', got {direction!r}")
    usable = {m: e for m, e in found.items() if e.n > 0}
    return {m: 1 + sum(better(o, e, direction) for other, o in usable.items() if other != m)
            for m, e in usable.items()}


@dataclass(frozen=True)
class Reliability:
    random_last: bool | None      # random below every model-based method, intervals separated (None: no random)
    edge_rank: int | None         # the edge control's rank among all methods (None: no edge)
    methods: int                  # methods ranked
    stability: float              # mean Kendall tau of bootstrap orderings with the full ordering


def reliability(values: Mapping[str, np.ndarray], direction: str, *, resamples: int = 200,
                seed: int = 0) -> Reliability:
    found = estimates(values, seed=seed)
    ranks = rank_with_ties(found, direction)
    model_based = [m for m in ranks if m not in CONTROLS]
    random_last = None
    if "random" in ranks and model_based:
        random_last = all(better(found[m], found["random"], direction) for m in model_based)
    names = sorted(ranks)
    matrix = np.stack([np.asarray(values[m], dtype=np.float64).ravel() for m in names])  # (methods, images)
    sign = 1.0 if direction == "higher" else -1.0
    full = sign * np.nanmean(matrix, axis=1)
    rng = np.random.default_rng(seed)
    taus = []
    for _ in range(resamples):
        pick = rng.integers(0, matrix.shape[1], matrix.shape[1])
        with warnings.catch_warnings():
            # a method with no value in a resample: its mean is NaN and it sits this one out
            warnings.simplefilter("ignore", category=RuntimeWarning)
            resampled = sign * np.nanmean(matrix[:, pick], axis=1)
        ok = np.isfinite(resampled) & np.isfinite(full)
        if ok.sum() >= 2:
            tau = stats.kendalltau(full[ok], resampled[ok]).statistic
            if np.isfinite(tau):
                taus.append(tau)
    return Reliability(random_last, ranks.get("edge"), len(ranks), float(np.mean(taus)) if taus else float("nan"))


__all__ = ["CONTROLS", "Reliability", "better", "estimates", "rank_with_ties", "reliability"]
