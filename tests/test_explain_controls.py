"""The control methods: maps from the input alone, the same whatever the model or the batch."""

import numpy as np
import pytest
import torch

from ferxai.explain import make_explainer
from ferxai.explain.catalog import get as catalog_entry
from ferxai.models.zoo import build_model

CONTROLS = ["random", "edge", "center"]


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    a = build_model("fer_cnn", 7, 1, 16, widths=[4, 8, 8]).eval()
    torch.manual_seed(1)
    b = build_model("fer_cnn", 7, 1, 16, widths=[4, 8, 8]).eval()
    return a, b


@pytest.fixture(scope="module")
def images():
    return torch.rand(5, 1, 16, 16, generator=torch.Generator().manual_seed(2))


@pytest.mark.parametrize("name", CONTROLS)
def test_controls_ignore_the_model_the_targets_and_the_batch(name, models, images):
    a = make_explainer(name, models[0], arch="fer_cnn").attribute(images, torch.zeros(5))
    b = make_explainer(name, models[1], arch="fer_cnn").attribute(images, torch.arange(5))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    single = torch.cat([make_explainer(name, models[0], arch="fer_cnn").attribute(images[i:i + 1], [0])
                        for i in range(5)])
    torch.testing.assert_close(a, single, rtol=0, atol=0)
    assert a.shape == (5, 16, 16) and torch.isfinite(a).all() and (a >= 0).all()
    entry = catalog_entry(name)
    assert entry.family == "control" and entry.passes_per_image() == 0 and not entry.is_signed()


def test_random_differs_per_image_and_seed(models, images):
    e = make_explainer("random", models[0], arch="fer_cnn")
    maps = e.attribute(images, torch.zeros(5))
    assert not torch.equal(maps[0], maps[1])
    other = make_explainer("random", models[0], arch="fer_cnn", seed=1).attribute(images, torch.zeros(5))
    assert not torch.equal(maps, other)
    flat = maps.flatten().numpy()
    assert 0.4 < flat.mean() < 0.6 and flat.min() >= 0 and flat.max() < 1


def test_edge_is_the_sobel_magnitude(models):
    step = torch.zeros(1, 1, 8, 8)
    step[..., 4:] = 1.0  # a vertical edge between columns 3 and 4
    maps = make_explainer("edge", models[0], arch="fer_cnn").attribute(step, [0])[0]
    assert torch.all(maps[:, :3] == 0) and torch.all(maps[:, 5:] == 0)
    # Sobel x on a unit step: 1 + 2 + 1 on both sides of the edge; no vertical gradient inside
    torch.testing.assert_close(maps[2:6, 3:5], torch.full((4, 2), 4.0))
    rgb = step.expand(1, 3, 8, 8)
    torch.testing.assert_close(make_explainer("edge", models[0], arch="fer_cnn").attribute(rgb, [0])[0], maps)


def test_center_peaks_in_the_middle_with_the_stated_width(models):
    maps = make_explainer("center", models[0], arch="fer_cnn", sigma=0.25).attribute(torch.rand(2, 1, 17, 17), [0, 1])
    m = maps[0].numpy()
    assert np.unravel_index(m.argmax(), m.shape) == (8, 8) and m.max() == pytest.approx(1.0)
    sigma = 0.25 * 17
    assert m[8, 8 + 4] == pytest.approx(np.exp(-16 / (2 * sigma ** 2)), rel=1e-5)
    torch.testing.assert_close(maps[0], maps[1])
    np.testing.assert_allclose(m, m[::-1, ::-1], rtol=1e-6)
