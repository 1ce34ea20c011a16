"""Explanation metrics on hand-made maps and masks, with values known in advance."""

import math

import numpy as np
import pytest

from ferxai.assess import catalog
from ferxai.assess.metrics.auroc import auroc
from ferxai.assess.metrics.entropy import entropy
from ferxai.assess.metrics.pointing_game import pointing_game
from ferxai.assess.metrics.relevance_mass import relevance_mass
from ferxai.assess.metrics.relevance_rank import relevance_rank
from ferxai.assess.metrics.sparseness import sparseness
from ferxai.assess.intervals import bootstrap_mean, separated

RNG = np.random.default_rng(0)


def _square_masks(n=64, side=32, top=8, left=12, size=8):
    masks = np.zeros((n, side, side), dtype=bool)
    masks[:, top:top + size, left:left + size] = True
    return masks


LOCALISATION = ["pointing_game", "relevance_mass", "relevance_rank", "auroc"]


@pytest.mark.parametrize("name", LOCALISATION)
def test_a_map_equal_to_the_mask_scores_one(name):
    masks = _square_masks(4)
    np.testing.assert_allclose(catalog.load(name)(masks.astype(float), masks), 1.0)


@pytest.mark.parametrize("name", LOCALISATION)
def test_the_inverted_mask_scores_zero(name):
    masks = _square_masks(4)
    np.testing.assert_allclose(catalog.load(name)((~masks).astype(float), masks), 0.0)


@pytest.mark.parametrize("name,expected", [("pointing_game", None), ("relevance_mass", None),
                                           ("relevance_rank", None), ("auroc", 0.5)])
def test_random_maps_score_about_the_mask_area_or_one_half(name, expected):
    masks = _square_masks(400)
    area = masks[0].mean()  # 64 / 1024
    scores = catalog.load(name)(RNG.random(masks.shape), masks)
    target = area if expected is None else expected
    # a single image's pointing game is 0 or 1; its mean over 400 images is a proportion
    tolerance = 3 * math.sqrt(area * (1 - area) / 400) if name == "pointing_game" else 0.02
    assert abs(scores.mean() - target) < tolerance


def test_pointing_game_tolerance_and_ties():
    masks = _square_masks(1)
    near = np.zeros((1, 32, 32))
    near[0, 8, 10] = 1.0  # two pixels left of the mask (which starts at column 12)
    assert pointing_game(near, masks)[0] == 0.0
    assert pointing_game(near, masks, tolerance=1)[0] == 0.0
    assert pointing_game(near, masks, tolerance=2)[0] == 1.0
    # a constant map has no peak: it scores the mask's share, not a free hit
    assert pointing_game(np.ones((1, 32, 32)), masks)[0] == pytest.approx(64 / 1024)
    # magnitudes: a strong negative value is the peak
    signed = np.zeros((1, 32, 32))
    signed[0, 10, 14], signed[0, 0, 0] = -5.0, 1.0
    assert pointing_game(signed, masks)[0] == 1.0


def test_relevance_mass_and_rank_on_partial_maps():
    masks = _square_masks(1)
    half = np.zeros((1, 32, 32))
    half[0, 8:12, 12:20] = 1.0        # half the mask (32 px) ...
    half[0, 20:24, 0:8] = 1.0         # ... and as much outside
    assert relevance_mass(half, masks)[0] == pytest.approx(0.5)
    assert relevance_rank(half, masks)[0] == pytest.approx(0.5)
    weighted = half.copy()
    weighted[0, 8:12, 12:20] = 3.0    # three times the weight inside
    assert relevance_mass(weighted, masks)[0] == pytest.approx(0.75)
    assert relevance_rank(weighted, masks)[0] == pytest.approx(0.5)  # top 64: 32 inside


def test_auroc_equals_the_pairwise_definition():
    maps = RNG.integers(0, 4, size=(3, 6, 6)).astype(float)  # many ties
    masks = RNG.random((3, 6, 6)) < 0.3
    got = auroc(maps, masks)
    for i in range(3):
        pos, neg = maps[i][masks[i]], maps[i][~masks[i]]
        pairs = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
        assert got[i] == pytest.approx(pairs)


def test_images_without_an_answer_are_nan():
    empty = np.zeros((2, 8, 8), dtype=bool)
    empty[1, 2:4, 2:4] = True
    maps = RNG.random((2, 8, 8))
    for name in LOCALISATION:
        scores = catalog.load(name)(maps, empty)
        assert math.isnan(scores[0]) and not math.isnan(scores[1])
    assert math.isnan(relevance_mass(np.zeros((1, 8, 8)), empty[1:])[0])
    with pytest.raises(ValueError, match="must both be"):
        relevance_mass(maps, empty[:, :4])


def test_complexity_extremes():
    one = np.zeros((1, 10, 10))
    one[0, 3, 3] = 2.0
    flat = np.ones((1, 10, 10))
    assert sparseness(one)[0] == pytest.approx(99 / 100)
    assert sparseness(flat)[0] == pytest.approx(0.0)
    assert entropy(one)[0] == pytest.approx(0.0)
    assert entropy(flat)[0] == pytest.approx(math.log(100))
    two = np.zeros((1, 10, 10))
    two[0, 0, :2] = [1.0, -1.0]  # magnitudes: two equal pixels
    assert entropy(two)[0] == pytest.approx(math.log(2))
    assert math.isnan(sparseness(np.zeros((1, 4, 4)))[0])
    # sparser maps rank higher on sparseness and lower on entropy
    smooth = RNG.random((1, 10, 10))
    assert sparseness(one) > sparseness(smooth) > sparseness(flat)
    assert entropy(one) < entropy(smooth) < entropy(flat)


def test_bootstrap_interval_covers_the_mean_and_narrows_with_more_images():
    small = bootstrap_mean(RNG.normal(1.0, 1.0, 25))
    large = bootstrap_mean(RNG.normal(1.0, 1.0, 2500))
    assert small.low < small.mean < small.high and small.n == 25
    assert (large.high - large.low) < (small.high - small.low) / 5
    assert large.low < 1.0 < large.high
    with_nan = bootstrap_mean(np.array([1.0, np.nan, 3.0]))
    assert with_nan.n == 2 and with_nan.mean == 2.0
    assert bootstrap_mean(np.array([np.nan])).n == 0


def test_separated_intervals():
    a = bootstrap_mean(RNG.normal(0.0, 0.1, 200))
    b = bootstrap_mean(RNG.normal(1.0, 0.1, 200))
    c = bootstrap_mean(RNG.normal(0.005, 0.1, 200))
    assert separated(a, b) and not separated(a, c)


def test_catalog_checks_parameters_and_names():
    assert catalog.get("pointing_game").resolve({}) == {"tolerance": 0}
    assert catalog.get("pointing_game").resolve({"tolerance": 3}) == {"tolerance": 3}
    with pytest.raises(catalog.MetricConfigError, match=r"'pointing_game'.*'tolerance'.*-1"):
        catalog.get("pointing_game").resolve({"tolerance": -1})
    with pytest.raises(catalog.MetricConfigError, match="unknown parameter"):
        catalog.get("auroc").resolve({"tolerance": 1})
    with pytest.raises(catalog.MetricConfigError, match="unknown metric 'pointing'.*pointing_game"):
        catalog.get("pointing")
    for metric in catalog.METRICS.values():
        assert callable(catalog.load(metric.name)) and metric.direction in ("higher", "lower")


def test_bootstrap_is_reproducible_for_a_seed():
    values = RNG.random(50)
    assert bootstrap_mean(values, seed=3) == bootstrap_mean(values, seed=3)
    assert bootstrap_mean(values, seed=3) != bootstrap_mean(values, seed=4)


def test_maps_of_the_wrong_shape_fail_naming_experiment_method_and_metric(tmp_path):
    from ferxai.assess.collect import write_map_scores
    from ferxai.explain.shard_files import save_shard

    ids = ["a", "b"]
    masks = np.zeros((2, 8, 8), bool)
    masks[:, 2:4, 2:4] = True
    np.savez(tmp_path / "inputs.npz", ids=np.array(ids), sets=np.array(["x", "x"]), masks=masks,
             has_mask=np.ones(2, bool))
    save_shard(tmp_path / "attributions.npz", np.ones((2, 6, 6), np.float32), ids, {"start": 0, "total": 2})
    metrics = {"pointing_game": {"metric": "pointing_game", "params": {"tolerance": 0}}}
    with pytest.raises(ValueError, match=r"results/exp_a/assess: method 'saliency', condition 'clean', "
                                         r"metric 'pointing_game': maps \(2, 6, 6\) do not match the masks \(2, 8, 8\)"):
        write_map_scores(tmp_path / "inputs.npz", [("clean", "saliency", str(tmp_path / "attributions.npz"))],
                         metrics, "results/exp_a/assess")
