"""Max-sensitivity on explanations whose change under input noise is known."""

import numpy as np
import pytest
import torch

from ferxai.assess.metrics.max_sensitivity import max_sensitivity


def _images(n=5, side=8):
    return torch.rand((n, 1, side, side), generator=torch.Generator().manual_seed(0)) + 0.5


def test_a_map_that_ignores_the_input_has_zero_sensitivity():
    x = _images()
    fixed = torch.rand((8, 8), generator=torch.Generator().manual_seed(1))
    values = max_sensitivity(lambda inputs, t: fixed.expand(len(inputs), 8, 8), x, fixed.expand(5, 8, 8),
                             torch.zeros(5, dtype=torch.long), samples=4)
    assert torch.all(values == 0)


def test_the_input_as_its_own_map_moves_by_the_noise_and_no_more():
    # map = x: the change is exactly the perturbation, |d|_inf <= radius, so the relative change is
    # at most radius * sqrt(pixels) / |x| and well above 0
    x = _images()
    radius = 0.05
    values = max_sensitivity(lambda inputs, t: inputs[:, 0], x, x[:, 0], torch.zeros(5, dtype=torch.long),
                             radius=radius, samples=6)
    bound = radius * 8 / x[:, 0].flatten(1).norm(dim=1)
    assert torch.all(values <= bound + 1e-6) and torch.all(values > 0.3 * bound)


def test_scores_only_the_first_images_and_does_not_depend_on_how_many_share_a_call():
    x = _images(n=6)
    weights = torch.randn((8, 8), generator=torch.Generator().manual_seed(2))

    def squared(inputs, t):  # a map that amplifies noise non-linearly
        return (inputs[:, 0] * weights) ** 2

    targets = torch.zeros(6, dtype=torch.long)
    one = max_sensitivity(squared, x, squared(x, targets), targets, samples=3, max_images=4, seed=5, per_call=1)
    many = max_sensitivity(squared, x, squared(x, targets), targets, samples=3, max_images=4, seed=5, per_call=4)
    torch.testing.assert_close(one, many, equal_nan=True)
    assert torch.isnan(one[4:]).all() and torch.isfinite(one[:4]).all()
    other_seed = max_sensitivity(squared, x, squared(x, targets), targets, samples=3, max_images=4, seed=6)
    assert not torch.equal(one[:4], other_seed[:4])


def test_a_gradient_method_runs_under_captums_no_grad():
    from ferxai.explain import make_explainer
    from ferxai.models.zoo import build_model

    torch.manual_seed(0)
    model = build_model("fer_cnn", 7, 1, 16, widths=[4, 8, 8]).eval()
    x = torch.rand((3, 1, 16, 16), generator=torch.Generator().manual_seed(3))
    targets = torch.tensor([0, 1, 2])
    saliency = make_explainer("saliency", model, arch="fer_cnn")
    edge = make_explainer("edge", model, arch="fer_cnn")
    sal = max_sensitivity(saliency.attribute, x, saliency.attribute(x, targets), targets, samples=3, radius=0.05)
    edg = max_sensitivity(edge.attribute, x, edge.attribute(x, targets), targets, samples=3, radius=0.05)
    assert torch.isfinite(sal).all() and torch.all(sal > 0)
    # both react to the input noise; the edge map is a fixed filter of the input, saliency is not
    assert torch.isfinite(edg).all() and np.isfinite(float(edg.mean()))


def test_the_catalog_entry_matches_the_functions_keywords():
    import inspect

    from ferxai.assess import catalog

    entry = catalog.get("max_sensitivity")
    keywords = set(inspect.signature(catalog.load("max_sensitivity")).parameters)
    assert set(entry.params) <= keywords and entry.needs == ("explainer",) and entry.direction == "lower"
    with pytest.raises(catalog.MetricConfigError, match="radius"):
        entry.resolve({"radius": 0})
