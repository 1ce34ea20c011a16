"""Agreement measures on hand-made maps, and the cascading randomisation of a real zoo model."""

import numpy as np
import pytest
import torch

from ferxai.assess.randomisation import cascade, cascade_steps, parameterised_layers
from ferxai.assess.similarity import rank_correlation, ssim, top_k_iou, top_k_mask

RNG = np.random.default_rng(0)


def test_rank_correlation_known_values():
    a = np.arange(16, dtype=float).reshape(1, 4, 4)
    assert rank_correlation(a, a)[0] == pytest.approx(1.0)
    assert rank_correlation(a, 2 * a + 1)[0] == pytest.approx(1.0)   # monotone: same ranking
    assert rank_correlation(a, -a)[0] == pytest.approx(1.0)          # magnitudes
    assert rank_correlation(a, a[:, ::-1, ::-1])[0] == pytest.approx(-1.0)
    independent = rank_correlation(RNG.random((200, 8, 8)), RNG.random((200, 8, 8)))
    assert abs(independent.mean()) < 0.02
    assert np.isnan(rank_correlation(np.ones((1, 4, 4)), a)[0])
    from scipy.stats import spearmanr
    x, y = RNG.integers(0, 3, (1, 5, 5)).astype(float), RNG.random((1, 5, 5))
    assert rank_correlation(x, y)[0] == pytest.approx(spearmanr(x.ravel(), y.ravel()).statistic)


def test_top_k_iou_known_values():
    a = np.zeros((1, 10, 10))
    a[0, 0, :10] = np.arange(10, 0, -1)      # the 10 largest: row 0
    b = np.zeros((1, 10, 10))
    b[0, 0, :5] = 1.0
    b[0, 1, :5] = 1.0                         # shares 5 of its 10 with a
    assert top_k_iou(a, a, 0.1)[0] == 1.0
    assert top_k_iou(a, b, 0.1)[0] == pytest.approx(5 / 15)
    assert top_k_mask(a, 0.05).sum() == 5 and top_k_mask(a, 0.05)[0, 0, :5].all()
    with pytest.raises(ValueError, match="fraction"):
        top_k_mask(a, 0)


def test_ssim_equals_scikit_image_over_the_whole_map():
    from skimage.metrics import structural_similarity
    a = RNG.random((2, 24, 24))
    b = a + 0.3 * RNG.random((2, 24, 24))
    ours = ssim(a, b)
    for i in range(2):
        x, y = a[i] / a[i].max(), b[i] / b[i].max()
        _, full = structural_similarity(x, y, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                        use_sample_covariance=False, full=True)
        assert ours[i] == pytest.approx(full.mean())
    assert ssim(a, a) == pytest.approx(1.0)
    assert ssim(a, RNG.random((2, 24, 24))).mean() < 0.5


def test_cascade_randomises_from_the_top_and_leaves_the_model_alone():
    from ferxai.models.zoo import build_model
    torch.manual_seed(0)
    model = build_model("fer_cnn", 7, 1, 16, widths=[4, 8, 8]).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    layers = [name for name, _ in parameterised_layers(model)]
    plan = cascade_steps(model)
    # weight layers from the output down, each with the norm layer that follows it
    assert [name for name, _ in plan] == [n for n in layers[::-1] if ".bn" not in n]
    assert plan[1] == ("features.block3.conv2", ["features.block3.bn2", "features.block3.conv2"])
    assert sorted(n for _, names in plan for n in names) == sorted(layers)
    steps = list(cascade(model, seed=0))
    assert [name for name, _ in steps] == [name for name, _ in plan]
    for k, (name, randomised) in enumerate(steps):
        changed = {n for n, m in parameterised_layers(randomised)
                   if any(not torch.equal(p, dict(model.named_parameters())[f"{n}.{pn}"])
                          for pn, p in m.named_parameters(recurse=False))}
        assert changed == {n for _, names in plan[:k + 1] for n in names}
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    again = dict(cascade(model, seed=0))[layers[0]]
    assert all(torch.equal(a, b) for a, b in zip(again.parameters(), steps[-1][1].parameters()))
    other = dict(cascade(model, seed=1))[layers[0]]
    assert not all(torch.equal(a, b) for a, b in zip(other.parameters(), steps[-1][1].parameters()))


def test_the_sanity_check_separates_a_gradient_from_the_edge_control():
    """Saliency must change when the whole model is randomised; the edge control cannot."""
    from ferxai.explain import make_explainer
    from ferxai.models.zoo import build_model
    torch.manual_seed(0)
    model = build_model("fer_cnn", 7, 1, 16, widths=[4, 8, 8]).eval()
    x = torch.rand(6, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    targets = torch.arange(6) % 7
    _, randomised = list(cascade(model))[-1]
    scores = {}
    for name in ("saliency", "edge"):
        original = make_explainer(name, model, arch="fer_cnn").attribute(x, targets).numpy()
        after = make_explainer(name, randomised, arch="fer_cnn").attribute(x, targets).numpy()
        scores[name] = rank_correlation(original, after).mean()
    assert scores["edge"] == pytest.approx(1.0)
    assert scores["saliency"] < 0.3  # 0.08 on this seed; the edge control stays at exactly 1
