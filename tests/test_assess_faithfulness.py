"""Deletion and insertion curves on a linear model whose answer is known pixel by pixel."""

import pytest
import torch
import torch.nn as nn

from ferxai.assess.metrics.deletion import deletion as deletion_auc
from ferxai.assess.metrics.insertion import insertion as insertion_auc
from ferxai.assess.removal import area_under, removal_curves


def _linear_model(region: torch.Tensor) -> nn.Module:
    """Class 0's logit is the sum of the pixels in `region`; class 1's is 0."""
    h, w = region.shape
    model = nn.Sequential(nn.Flatten(), nn.Linear(h * w, 2, bias=False))
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].weight[0] = region.flatten().float()
    return model.eval()


@pytest.fixture()
def case():
    region = torch.zeros(4, 4)
    region[1:3, 1:3] = 1  # 4 of 16 pixels decide the class
    return _linear_model(region), torch.ones(1, 1, 4, 4), region[None], torch.tensor([0])


def test_known_curves_and_areas(case):
    model, x, truth, target = case
    curve = removal_curves(model, x, truth, target, steps=16)
    torch.testing.assert_close(curve[0, :6], torch.tensor([4.0, 3, 2, 1, 0, 0]))
    assert deletion_auc(model, x, truth, target, steps=16).item() == pytest.approx(0.5)
    assert deletion_auc(model, x, truth, target, steps=16, order="least").item() == pytest.approx(3.5)
    assert insertion_auc(model, x, truth, target, steps=16).item() == pytest.approx(3.5)
    assert insertion_auc(model, x, truth, target, steps=16, order="least").item() == pytest.approx(0.5)


def test_the_true_ordering_beats_random_and_reversed_maps(case):
    model, x, truth, target = case
    x = torch.rand(8, 1, 4, 4, generator=torch.Generator().manual_seed(0)) + 0.5
    targets = torch.zeros(8, dtype=torch.long)
    good = truth.expand(8, 4, 4) + 0.01 * torch.rand(8, 4, 4)
    noise = torch.rand(8, 4, 4, generator=torch.Generator().manual_seed(1))
    assert (deletion_auc(model, x, good, targets) < deletion_auc(model, x, noise, targets)).all()
    assert (deletion_auc(model, x, good, targets) < deletion_auc(model, x, good, targets, order="least")).all()
    assert (insertion_auc(model, x, good, targets) > insertion_auc(model, x, good, targets, order="least")).all()


def test_batch_size_and_signs_do_not_change_the_scores(case):
    model, _, _, _ = case
    x = torch.rand(5, 1, 4, 4, generator=torch.Generator().manual_seed(2))
    maps = torch.randn(5, 4, 4, generator=torch.Generator().manual_seed(3))
    targets = torch.zeros(5, dtype=torch.long)
    a = deletion_auc(model, x, maps, targets, batch_size=1, steps=8)
    b = deletion_auc(model, x, maps, targets, batch_size=64, steps=8)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(deletion_auc(model, x, -maps, targets, steps=8), b)  # by magnitude


def test_mean_baseline_and_endpoints(case):
    model, x, truth, target = case
    x = torch.rand(1, 1, 4, 4, generator=torch.Generator().manual_seed(4))
    curve = removal_curves(model, x, truth, target, steps=4, baseline="mean")
    full = model(x)[0, 0]
    torch.testing.assert_close(curve[0, 0], full)                 # nothing removed yet
    torch.testing.assert_close(curve[0, -1], x.mean() * 4)       # everything at the image's mean
    assert area_under(torch.tensor([[1.0, 1.0, 1.0]])).item() == 1.0


def test_bad_shapes_and_options_are_named(case):
    model, x, truth, target = case
    with pytest.raises(ValueError, match=r"maps \(1, 3, 3\)"):
        removal_curves(model, x, truth[:, :3, :3], target)
    with pytest.raises(ValueError, match="mode must be"):
        removal_curves(model, x, truth, target, mode="erase")
    with pytest.raises(ValueError, match="baseline must be"):
        removal_curves(model, x, truth, target, baseline="blurred")


def test_catalog_states_the_modules_choices():
    from ferxai.assess import catalog, removal
    for name in ("deletion", "insertion"):
        params = catalog.get(name).params
        assert params["baseline"].choices == removal.BASELINES
        assert params["order"].choices == removal.ORDERS
    assert catalog.get("deletion").direction == "lower" and catalog.get("insertion").direction == "higher"


def test_faithfulness_correlation_of_the_exact_attribution_is_one():
    from ferxai.assess.metrics.faithfulness_correlation import faithfulness_correlation
    torch.manual_seed(0)
    weights = torch.randn(6, 6)
    model = _linear_model(weights)  # logit 0 = sum(w * x): w * x is its exact attribution to a black baseline
    x = torch.rand(4, 1, 6, 6, generator=torch.Generator().manual_seed(5)) + 0.1
    targets = torch.zeros(4, dtype=torch.long)
    exact = weights[None] * x[:, 0]
    kw = {"subset": 8, "samples": 40}
    torch.testing.assert_close(faithfulness_correlation(model, x, exact, targets, **kw), torch.ones(4))
    torch.testing.assert_close(faithfulness_correlation(model, x, -exact, targets, **kw), -torch.ones(4))
    noise = torch.rand(200, 6, 6, generator=torch.Generator().manual_seed(6))
    many = x.repeat(50, 1, 1, 1)
    unrelated = faithfulness_correlation(model, many, noise, torch.zeros(200, dtype=torch.long), **kw)
    assert abs(unrelated.mean().item()) < 0.05
    same = faithfulness_correlation(model, x, exact, targets, batch_size=3, **kw)
    torch.testing.assert_close(same, faithfulness_correlation(model, x, exact, targets, **kw))
    assert torch.isnan(faithfulness_correlation(model, x, torch.zeros(4, 6, 6), targets, **kw)).all()
    with pytest.raises(ValueError, match="subset"):
        faithfulness_correlation(model, x, exact, targets, subset=0)


@pytest.mark.parametrize("arch, size", [("fer_cnn", 48), ("resnet18", 32)])
def test_channels_last_forward_scores_as_the_default_layout(arch, size):
    """The faithfulness jobs run the model with channels-last weights: same deletion scores."""
    import copy

    from ferxai.assess.pipeline import forward_layout
    from ferxai.models import build_model

    torch.manual_seed(0)
    model = build_model(arch, num_classes=3, in_channels=1, input_size=size).eval()
    fast = forward_layout(copy.deepcopy(model))
    assert any(p.dim() == 4 and p.is_contiguous(memory_format=torch.channels_last)
               and not p.is_contiguous() for p in fast.parameters())
    x, maps = torch.rand(3, 1, size, size), torch.rand(3, size, size)
    targets = torch.tensor([0, 1, 2])
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model(x), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(deletion_auc(fast, x, maps, targets, steps=8, batch_size=5),
                               deletion_auc(model, x, maps, targets, steps=8, batch_size=5), rtol=1e-4, atol=1e-5)
