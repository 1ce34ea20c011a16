"""Perturbation methods: shapes, seeds, batching, known answers, agreement with Captum and lime."""

import logging

import numpy as np
import pytest
import torch
import torch.nn as nn

from ferxai.explain.base import ExplainerConfigError
from ferxai.explain.registry import make_explainer
from ferxai.models import build_model

from conftest import modules_loaded_explaining

SIDE = 16
# Small settings so that every method runs in well under a second on 16 px images.
FAST = {
    "occlusion": {"window": 4, "stride": 2},
    "feature_ablation": {"patch_size": 4},
    "lime": {"num_samples": 60, "n_segments": 16},
    "shap": {"max_evals": 80},
    "shapley_sampling": {"n_samples": 3, "patch_size": 4},
    "meaningful_perturbation": {"iterations": 15, "mask_size": 4, "blur_sigma": 2.0},
    "prediction_difference": {"window": 4, "stride": 4, "n_samples": 3},
    "rise": {"n_masks": 60, "mask_size": 4},
}
METHODS = sorted(FAST)
# Same maps whatever the batch size or the other images in the call (up to float rounding).
ATOL = 1e-5


class Recording(nn.Module):
    """Wraps a model and records the batch size of every forward call."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.sizes = []

    def forward(self, x):
        self.sizes.append(len(x))
        return self.model(x)


class Region(nn.Module):
    """Logit 0 = mean of a fixed square, logit 1 = its negative, logit 2 = 0 (softmax has a known answer)."""

    rows, cols = slice(4, 8), slice(8, 12)

    def forward(self, x):
        s = 8.0 * (x[:, :, self.rows, self.cols].mean(dim=(1, 2, 3)) - 0.5)
        return torch.stack([s, -s, torch.zeros_like(s)], dim=1)


def region_mask():
    m = torch.zeros(SIDE, SIDE, dtype=torch.bool)
    m[Region.rows, Region.cols] = True
    return m


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = build_model("fer_cnn", num_classes=3, in_channels=1, input_size=SIDE, widths=[4, 8, 8]).eval()
    x = torch.rand(3, 1, SIDE, SIDE, generator=torch.Generator().manual_seed(1))
    return model, x, torch.tensor([0, 1, 2])


def explain(name, model, x, t, batch_size=64, **extra):
    e = make_explainer(name, model, batch_size=batch_size, **{**FAST[name], **extra})
    return e, e.attribute(x, t)


@pytest.mark.parametrize("name", METHODS)
def test_shape_finite_seeded_and_batching_invariant(tiny, name):
    model, x, t = tiny
    e, maps = explain(name, model, x, t, batch_size=5)
    assert e.family == "perturbation" and maps.shape == (3, SIDE, SIDE) and maps.dtype == torch.float32
    assert torch.isfinite(maps).all() and maps.abs().max() > 0
    # a fresh explainer with the same parameters (seed) reproduces the maps ...
    _, again = explain(name, model, x, t, batch_size=5)
    assert torch.equal(maps, again)
    # ... and each image explained alone, with another batch size, gives the same map
    alone = torch.cat([explain(name, model, x[i:i + 1], t[i:i + 1], batch_size=bs)[1]
                       for i, bs in zip(range(3), (1, 64, 2))])
    torch.testing.assert_close(alone, maps, atol=ATOL, rtol=1e-4)


@pytest.mark.parametrize("name", ["lime", "rise", "shapley_sampling", "prediction_difference"])
def test_seed_changes_the_samples(tiny, name):
    model, x, t = tiny
    assert not torch.equal(explain(name, model, x, t)[1], explain(name, model, x, t, seed=1)[1])


@pytest.mark.parametrize("name", METHODS)
def test_model_batches_never_exceed_batch_size_and_passes_are_counted(tiny, name):
    model, x, t = tiny
    rec = Recording(model)
    e, _ = explain(name, rec, x, t, batch_size=7)
    assert max(rec.sizes) <= 7
    inputs_per_image = sum(rec.sizes) / len(x)
    if name == "shap":
        # shap stops at max_evals (two more for the empty and full masks); the count is an upper bound
        assert inputs_per_image <= e.passes_per_image() + 2
    else:
        assert inputs_per_image == e.passes_per_image()
    if name not in ("shap", "meaningful_perturbation"):
        # samples of several images share batches: all batches full but the last
        assert all(s == 7 for s in rec.sizes[:-1])


@pytest.mark.parametrize("name, params, min_overlap", [
    ("occlusion", {"window": 4, "stride": 2}, 0.6),
    ("feature_ablation", {"patch_size": 4}, 1.0),
    ("shapley_sampling", {"patch_size": 4}, 1.0),
    ("rise", {"n_masks": 300}, 0.6),
    ("lime", {"hide_color": "black", "n_segments": 25, "compactness": 50.0}, 0.6),
    ("prediction_difference", {"window": 4, "stride": 2}, 0.6),
    ("shap", {"masker": "black", "max_evals": 200}, 0.6),
    ("meaningful_perturbation", {"iterations": 40, "mask_size": SIDE, "blur_sigma": 3.0, "tv": 0.0}, 1.0),
])
def test_known_answer_highlights_the_region_the_model_reads(name, params, min_overlap):
    # a bright square on a darker textured background: blurring, occluding or resampling the
    # square lowers the target logit
    x = 0.2 + 0.3 * torch.rand(2, 1, SIDE, SIDE, generator=torch.Generator().manual_seed(3))
    x[:, :, Region.rows, Region.cols] += 0.5
    e = make_explainer(name, Region(), batch_size=32, **{**FAST[name], **params})
    if name == "prediction_difference":
        e.set_reference(images=torch.zeros(4, 1, SIDE, SIDE))
    maps = e.attribute(x, torch.tensor([0, 0]))
    region = region_mask()
    k = int(region.sum())
    for m in maps:
        top = m.flatten().topk(k).indices
        assert region.flatten()[top].float().mean() >= min_overlap, name


def test_occlusion_and_feature_ablation_equal_captum(tiny):
    from captum.attr import FeatureAblation, Occlusion

    model, x, t = tiny
    ours = make_explainer("occlusion", model, batch_size=4, window=6, stride=4).attribute(x, t)
    ref = Occlusion(model).attribute(x, sliding_window_shapes=(1, 6, 6), strides=(1, 4, 4),
                                     baselines=0.0, target=t, perturbations_per_eval=2)
    torch.testing.assert_close(ours, ref[:, 0], atol=1e-6, rtol=1e-5)

    e = make_explainer("feature_ablation", model, batch_size=4, patch_size=5)
    ours = e.attribute(x, t)
    mask = (torch.arange(SIDE)[:, None] // 5) * 4 + torch.arange(SIDE)[None, :] // 5
    ref = FeatureAblation(model).attribute(x, baselines=0.0, target=t, feature_mask=mask[None, None],
                                           perturbations_per_eval=3)
    torch.testing.assert_close(ours, ref[:, 0], atol=1e-6, rtol=1e-5)


def test_shapley_sampling_equals_captum_with_the_same_permutations(tiny):
    from captum.attr import ShapleyValueSampling

    model, x, t = tiny
    ours = make_explainer("shapley_sampling", model, batch_size=9, n_samples=4, patch_size=8, seed=5).attribute(x, t)
    torch.manual_seed(5)  # captum draws its permutations from the global generator
    mask = (torch.arange(SIDE)[:, None] // 8) * 2 + torch.arange(SIDE)[None, :] // 8
    ref = ShapleyValueSampling(model).attribute(x, baselines=0.0, target=t, feature_mask=mask[None, None],
                                                n_samples=4, perturbations_per_eval=2)
    torch.testing.assert_close(ours, ref[:, 0], atol=1e-6, rtol=1e-5)


def test_lime_equals_lime_image_on_the_same_superpixels():
    from lime import lime_image

    torch.manual_seed(0)
    model = build_model("fer_cnn", num_classes=3, in_channels=3, input_size=SIDE, widths=[4, 8]).eval()
    x = torch.rand(1, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(2))
    e = make_explainer("lime", model, num_samples=50, n_segments=9, batch_size=16, seed=3)
    ours = e.attribute(x, torch.tensor([1]))[0]

    from ferxai.explain.methods._perturb import segment
    seg = segment(x, **e.segmentation_settings(SIDE, SIDE))[0][0].numpy()

    def classifier(batch):
        with torch.no_grad():
            return model(torch.from_numpy(batch).permute(0, 3, 1, 2).float()).numpy()

    exp = lime_image.LimeImageExplainer(random_state=3).explain_instance(
        x[0].permute(1, 2, 0).double().numpy(), classifier, labels=(1,), top_labels=None, hide_color=None,
        num_features=1000, num_samples=50, batch_size=16, segmentation_fn=lambda img: seg, random_seed=0)
    weights = dict(exp.local_exp[1])
    ref = torch.tensor(np.vectorize(weights.get)(seg), dtype=torch.float32)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("samples, features", [(50, 9), (8, 20)])  # more features than samples too
def test_lime_ridge_equals_scikit_learns(samples, features):
    linear_model = pytest.importorskip("sklearn.linear_model")  # lime's dependency, test extra only
    from ferxai.explain.methods.lime import weighted_ridge

    rng = np.random.default_rng(samples)
    data = rng.integers(0, 2, (samples, features)).astype(float)
    y, weights = rng.normal(size=samples), rng.uniform(0.05, 1.0, samples)
    ref = linear_model.Ridge(alpha=1.0, fit_intercept=True).fit(data, y, sample_weight=weights).coef_
    np.testing.assert_allclose(weighted_ridge(data, y, weights), ref, rtol=1e-9, atol=1e-12)


def test_a_process_explaining_with_lime_loads_neither_lime_nor_scikit_learn():
    assert modules_loaded_explaining({"lime": {"num_samples": 20, "n_segments": 9}}, ("lime", "sklearn")) == []


def test_lime_segmentations_are_sized_to_the_image(tiny):
    from ferxai.explain.methods._perturb import segment

    x = torch.rand(2, 1, 48, 48, generator=torch.Generator().manual_seed(0))
    x = torch.nn.functional.avg_pool2d(x, 5, stride=1, padding=2)  # some structure
    for method, lo in (("slic", 30), ("quickshift", 15)):
        e = make_explainer("lime", tiny[0], segmentation=method)
        _, counts = segment(x, **e.segmentation_settings(48, 48))
        assert all(c >= lo for c in counts), (method, counts)


def test_shap_modes(tiny):
    model, x, t = tiny
    signed = explain("shap", model, x[:1], t[:1])[1]
    e, absolute = explain("shap", model, x[:1], t[:1], mode="abs")
    assert not e.signed and e.describe()["signed"] is False
    torch.testing.assert_close(absolute, signed.abs())
    e, posneg = explain("shap", model, x[:1], t[:1], mode="posneg")
    assert e.signed and torch.equal(posneg, signed)


def test_prediction_difference_uses_references_and_warns_without(tiny, caplog):
    model, x, t = tiny
    e = make_explainer("prediction_difference", model, **FAST["prediction_difference"])
    with caplog.at_level(logging.WARNING):
        noise = e.attribute(x, t)
    assert "no reference images" in caplog.text
    e.set_reference(images=torch.rand(5, 1, SIDE, SIDE), mean_image=torch.zeros(1, SIDE, SIDE))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        ref = e.attribute(x, t)
    assert "no reference images" not in caplog.text
    assert not torch.allclose(ref, noise)
    with pytest.raises(ValueError, match="reference images are"):
        e.set_reference(images=torch.rand(5, 1, 8, 8)).attribute(x, t)


def test_dataset_baselines_need_references(tiny):
    model, x, t = tiny
    e = make_explainer("occlusion", model, baseline="mean", window=4, stride=4)
    with pytest.raises(ExplainerConfigError, match="set_reference"):
        e.attribute(x, t)
    mean = x.mean(0)
    e.set_reference(mean_image=mean)
    blurred = make_explainer("occlusion", model, baseline="blur", window=4, stride=4).attribute(x, t)
    assert not torch.allclose(e.attribute(x, t), blurred)


def test_rise_masks_are_seeded_soft_and_keep_about_p():
    from ferxai.explain.methods.rise import rise_masks

    m = rise_masks(400, 4, 0.3, 20, 24, seed=1)
    assert m.shape == (400, 1, 20, 24) and m.min() >= 0 and m.max() <= 1
    assert abs(m.mean().item() - 0.3) < 0.03
    assert ((m > 0) & (m < 1)).any()  # bilinear upsampling: soft edges
    assert torch.equal(m, rise_masks(400, 4, 0.3, 20, 24, seed=1))
    assert not torch.equal(m, rise_masks(400, 4, 0.3, 20, 24, seed=2))


@pytest.mark.parametrize("name, params, param", [
    ("occlusion", {"windw": 4}, "windw"),
    ("lime", {"n_samples": 10}, "n_samples"),
    ("rise", {"masks": 10}, "masks"),
])
def test_unknown_parameter_names_method_and_parameter(tiny, name, params, param):
    with pytest.raises(ExplainerConfigError, match=rf"{name}.*{param}"):
        make_explainer(name, tiny[0], **params)


@pytest.mark.parametrize("name, params, param", [
    ("occlusion", {"stride": 9}, "stride"),
    ("occlusion", {"baseline": "uniform"}, "baseline"),
    ("lime", {"segmentation": "felzenszwalb"}, "segmentation"),
    ("lime", {"num_samples": 1}, "num_samples"),
    ("shap", {"masker": "blur(8)"}, "masker"),
    ("shap", {"mode": "pos"}, "mode"),
    ("rise", {"p": 0.0}, "p"),
    ("meaningful_perturbation", {"lr": -1.0}, "lr"),
    ("prediction_difference", {"window": 0}, "window"),
    ("shapley_sampling", {"n_samples": 0}, "n_samples"),
])
def test_bad_values_name_method_and_parameter(tiny, name, params, param):
    with pytest.raises(ExplainerConfigError, match=rf"{name}.*{param}"):
        make_explainer(name, tiny[0], **params)


def test_passes_follow_the_image_size(tiny):
    model, x, t = tiny
    e = make_explainer("occlusion", model)
    assert e.passes_per_image() == 11 * 11 + 1  # 48 px assumed before the first call
    e.attribute(x, t)
    assert e.passes_per_image() == 3 * 3 + 1
    assert make_explainer("feature_ablation", model).passes_per_image() == 12 * 12 + 1
    assert make_explainer("shapley_sampling", model).passes_per_image() == 2 + 25 * 35
    assert make_explainer("prediction_difference", model).passes_per_image() == 1 + 121 * 10
    assert make_explainer("meaningful_perturbation", model).passes_per_image() == 100
