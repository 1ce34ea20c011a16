"""Leaderboard ties and metric reliability on per-image scores made up with known structure."""

import numpy as np
import pytest

from ferxai.assess.intervals import Estimate
from ferxai.assess.leaderboard import estimates, rank_with_ties, reliability

RNG = np.random.default_rng(0)


def test_methods_the_intervals_cannot_separate_share_a_rank():
    found = {"a": Estimate(0.9, 0.85, 0.95, 50), "b": Estimate(0.88, 0.83, 0.93, 50),
             "c": Estimate(0.5, 0.45, 0.55, 50), "random": Estimate(0.1, 0.05, 0.15, 50)}
    assert rank_with_ties(found, "higher") == {"a": 1, "b": 1, "c": 3, "random": 4}
    assert rank_with_ties(found, "lower") == {"random": 1, "c": 2, "a": 3, "b": 3}
    chain = {"x": Estimate(1.0, 0.9, 1.1, 9), "y": Estimate(0.85, 0.75, 0.95, 9), "z": Estimate(0.7, 0.6, 0.8, 9)}
    assert rank_with_ties(chain, "higher") == {"x": 1, "y": 1, "z": 2}  # x~y, y~z, x > z
    with pytest.raises(ValueError, match="direction"):
        rank_with_ties(found, "up")
    assert "gone" not in rank_with_ties({**found, "gone": Estimate(np.nan, np.nan, np.nan, 0)}, "higher")


def test_reliability_of_a_metric_that_works_and_of_one_that_is_noise():
    n = 60
    signal = {"good": RNG.normal(0.8, 0.05, n), "fair": RNG.normal(0.5, 0.05, n),
              "edge": RNG.normal(0.65, 0.05, n), "random": RNG.normal(0.1, 0.05, n)}
    works = reliability(signal, "higher")
    assert works.random_last is True and works.edge_rank == 2 and works.methods == 4
    assert works.stability == pytest.approx(1.0)
    same = 0.5 + RNG.normal(0.0, 0.2, n)
    noise = {m: same + RNG.normal(0.0, 0.01, n) for m in ("good", "fair", "edge", "random")}
    broken = reliability(noise, "higher")
    assert broken.random_last is False and broken.stability < 0.6
    assert reliability({"good": signal["good"]}, "higher").random_last is None


def test_estimates_skip_images_without_a_value():
    values = {"m": np.array([1.0, np.nan, 3.0])}
    assert estimates(values)["m"].n == 2 and estimates(values)["m"].mean == 2.0
