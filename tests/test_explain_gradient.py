"""Gradient-family explainers (captum), baselines, target layers and model surgery."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn as nn

from ferxai.explain import ExplainerConfigError, UnsupportedModelError, make_explainer
from ferxai.explain.baselines import gaussian_blur, make_baseline, sample_baselines
from ferxai.explain.layers import LayerNotFoundError, default_layer_path, resolve_layer
from ferxai.explain.surgery import SurgeryError, activation_calls, prepare_for_attribution
from ferxai.models.zoo import build_model

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

GRADIENT_METHODS = [
    "saliency", "input_x_gradient", "guided_backprop", "deconvolution", "integrated_gradients",
    "layer_integrated_gradients", "smoothgrad", "deeplift", "deeplift_shap", "gradient_shap",
    "guided_gradcam",
]
SURGERY_METHODS = ["guided_backprop", "deconvolution", "deeplift", "deeplift_shap", "guided_gradcam"]
# Small settings so every method runs in well under a second on the tiny models.
FAST = {
    "integrated_gradients": {"n_steps": 8},
    "layer_integrated_gradients": {"n_steps": 8},
    "smoothgrad": {"nt_samples": 4},
    "deeplift_shap": {"n_baselines": 3},
    "gradient_shap": {"n_samples": 5},
}
STOCHASTIC = {"smoothgrad", "deeplift_shap", "gradient_shap"}


def _randomise_bn(model: nn.Module) -> nn.Module:
    """Non-trivial BatchNorm statistics, so surgery/known-answer checks are not vacuous."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) * 0.2 - 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return model.eval()


@pytest.fixture(scope="module")
def fer():
    torch.manual_seed(0)
    return _randomise_bn(build_model("fer_cnn", 7, 1, 16, widths=[4, 8, 8]))


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return _randomise_bn(build_model("resnet18", 7, 1, 32))


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(2)
    return torch.rand(3, 1, 16, 16, generator=g), torch.tensor([0, 3, 6])


class LinearModel(nn.Module):
    """f(x) = W flatten(x) + b, no normalisation: attributions have closed forms."""

    def __init__(self, c: int = 1, side: int = 4, k: int = 3):
        super().__init__()
        self.shape = (c, side, side)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(c * side * side, k))
        with torch.no_grad():
            self.net[1].weight.copy_(torch.randn(k, c * side * side, generator=torch.Generator().manual_seed(3)))

    def forward(self, x):
        return self.net(x)

    def w(self, targets):  # (N, C, H, W) weight rows of the targets
        return self.net[1].weight.detach()[targets].view(len(targets), *self.shape)


class SmoothModel(nn.Module):
    """A small smooth nonlinear net, where path integrals converge fast."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(4)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 3))

    def forward(self, x):
        return self.net(x)


@pytest.fixture(scope="module")
def linear():
    return LinearModel().eval()


@pytest.fixture(scope="module")
def small_images():
    g = torch.Generator().manual_seed(5)
    return torch.rand(2, 1, 4, 4, generator=g), torch.tensor([2, 0])


def _target_scores(model, x, t):
    with torch.no_grad():
        return model(x)[torch.arange(len(t)), t]


# --------------------------------------------------------------------------- every method


@pytest.mark.parametrize("name", GRADIENT_METHODS)
def test_method_on_fer_cnn_shape_finite_seeded(name, fer, images):
    x, t = images
    explainer = make_explainer(name, fer, arch="fer_cnn", batch_size=4, **FAST.get(name, {}))
    torch.manual_seed(7)
    first = explainer.attribute(x, t)
    torch.manual_seed(7)
    again = explainer.attribute(x, t)
    assert first.shape == (3, 16, 16) and first.dtype == torch.float32
    assert torch.isfinite(first).all() and first.abs().sum() > 0
    assert torch.equal(first, again)
    info = explainer.describe()
    assert (info["family"], info["library"], info["name"]) == ("gradient", "captum", name)
    assert explainer.passes_per_image() >= 1
    if name in STOCHASTIC:  # a different seed gives a different draw
        torch.manual_seed(8)
        assert not torch.equal(first, explainer.attribute(x, t))


@pytest.mark.parametrize("name", ["saliency", "integrated_gradients", "deeplift",
                                  "layer_integrated_gradients", "guided_gradcam"])
def test_batch_size_only_changes_chunking(name, fer, images):
    x, t = images
    small, large = (make_explainer(name, fer, arch="fer_cnn", batch_size=b, **FAST.get(name, {})).attribute(x, t)
                    for b in (1, 64))
    torch.testing.assert_close(small, large, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", GRADIENT_METHODS)
def test_batch_size_bounds_model_inputs_per_pass(name, images):
    x, t = images
    torch.manual_seed(0)
    model = build_model("fer_cnn", 7, 1, 16, widths=[4, 4])
    sizes: list[int] = []
    # on input_norm, so it sees the batch after DeepLIFT concatenates the baselines
    model.input_norm.register_forward_pre_hook(lambda _m, args: sizes.append(len(args[0])))
    make_explainer(name, model, arch="fer_cnn", batch_size=4, **FAST.get(name, {})).attribute(x, t)
    assert sizes and max(sizes) <= 4, sizes


@pytest.mark.parametrize("name", SURGERY_METHODS)
def test_surgery_methods_on_resnet18(name, resnet):
    x = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(6))
    explainer = make_explainer(name, resnet, arch="resnet18", batch_size=8, **FAST.get(name, {}))
    maps = explainer.attribute(x, torch.tensor([1, 5]))
    assert maps.shape == (2, 32, 32) and torch.isfinite(maps).all() and maps.abs().sum() > 0
    assert type(resnet.layer1[0]).__name__ == "BasicBlock"  # the caller's model is untouched


def test_passes_per_image_cost_model(fer):
    def cost(name, **p):
        return make_explainer(name, fer, arch="fer_cnn", **p).passes_per_image()

    assert cost("saliency") == cost("input_x_gradient") == cost("guided_backprop") == 1
    assert cost("integrated_gradients", n_steps=12) == 12
    assert cost("layer_integrated_gradients", n_steps=12) == 13
    assert cost("smoothgrad", nt_samples=10) == 10
    assert cost("gradient_shap", n_samples=7) == 7
    assert cost("deeplift") == 2 and cost("guided_gradcam") == 2
    assert cost("deeplift_shap", n_baselines=4) == 8
    assert cost("deeplift_shap", n_baselines=4, baseline="black") == 2  # one distinct baseline


# --------------------------------------------------------------------------- known answers


def test_saliency_and_input_x_gradient_on_linear_model(linear, small_images):
    x, t = small_images
    w = linear.w(t)[:, 0]
    signed = make_explainer("saliency", linear, abs=False).attribute(x, t)
    torch.testing.assert_close(signed, w)
    torch.testing.assert_close(make_explainer("saliency", linear).attribute(x, t), w.abs())
    assert make_explainer("saliency", linear, abs=False).signed
    assert not make_explainer("saliency", linear).signed
    torch.testing.assert_close(make_explainer("input_x_gradient", linear).attribute(x, t), w * x[:, 0])


def test_channels_are_summed(small_images):
    model = LinearModel(c=3).eval()
    x = small_images[0].repeat(1, 3, 1, 1)
    t = small_images[1]
    maps = make_explainer("input_x_gradient", model).attribute(x, t)
    torch.testing.assert_close(maps, (model.w(t) * x).sum(dim=1))


@pytest.mark.parametrize("baseline", ["black", "blur", "uniform"])
def test_integrated_gradients_and_deeplift_on_linear_model(baseline, linear, small_images):
    x, t = small_images
    w = linear.w(t)[:, 0]
    for name in ("integrated_gradients", "deeplift"):
        explainer = make_explainer(name, linear, baseline=baseline, blur_sigma=1.0)
        torch.manual_seed(0)
        maps = explainer.attribute(x, t)
        torch.manual_seed(0)
        b = make_baseline(baseline, x, t, blur_sigma=1.0)
        torch.testing.assert_close(maps, w * (x - b)[:, 0], rtol=1e-4, atol=1e-5)


def test_gradient_shap_and_deeplift_shap_on_linear_model(linear, small_images):
    x, t = small_images
    w = linear.w(t)[:, 0]
    gs = make_explainer("gradient_shap", linear, n_samples=6, stdevs=0.0, baseline="black")
    torch.testing.assert_close(gs.attribute(x, t), w * x[:, 0], rtol=1e-4, atol=1e-6)
    ref = torch.rand(1, 1, 4, 4, generator=torch.Generator().manual_seed(11))
    dls = make_explainer("deeplift_shap", linear, n_baselines=4, baseline="reference")
    assert dls.required_references() == ("images",)
    dls.set_reference(images=ref)
    torch.testing.assert_close(dls.attribute(x, t), w * (x - ref)[:, 0], rtol=1e-4, atol=1e-6)


def test_integrated_gradients_completeness(small_images):
    model = SmoothModel().eval()
    x, t = small_images
    maps = make_explainer("integrated_gradients", model, n_steps=32).attribute(x, t)
    expected = _target_scores(model, x, t) - _target_scores(model, torch.zeros_like(x), t)
    torch.testing.assert_close(maps.sum(dim=(1, 2)), expected, rtol=0, atol=1e-3)


@pytest.mark.parametrize("arch", ["fer_cnn", "resnet18"])
def test_deeplift_summation_to_delta(arch, fer, resnet):
    model, side = (fer, 16) if arch == "fer_cnn" else (resnet, 32)
    x = torch.rand(2, 1, side, side, generator=torch.Generator().manual_seed(12))
    t = torch.tensor([4, 1])
    baseline = gaussian_blur(x, 2.0)
    maps = make_explainer("deeplift", model, arch=arch, baseline="blur", blur_sigma=2.0).attribute(x, t)
    expected = _target_scores(model, x, t) - _target_scores(model, baseline, t)
    # exact up to float error only thanks to surgery (fer_cnn: chained relu2 -> pool hooks;
    # resnet18: ReLU modules reused within blocks)
    torch.testing.assert_close(maps.sum(dim=(1, 2)), expected, rtol=1e-4, atol=1e-4)


def test_smoothgrad_aggregations_without_noise(fer, images):
    x, t = images
    grad = make_explainer("saliency", fer, abs=False).attribute(x, t)
    abs_grad = make_explainer("saliency", fer).attribute(x, t)

    def smooth(aggregation):
        return make_explainer("smoothgrad", fer, nt_samples=3, stdevs=0.0, aggregation=aggregation).attribute(x, t)

    torch.testing.assert_close(smooth("abs"), abs_grad)
    torch.testing.assert_close(smooth("raw"), grad)
    torch.testing.assert_close(smooth("sq"), grad**2)
    torch.testing.assert_close(smooth("grad_x_input"), grad * x[:, 0])
    assert make_explainer("smoothgrad", fer, aggregation="raw").signed
    assert not make_explainer("smoothgrad", fer, aggregation="sq").signed


def test_softmax_output_attributes_probabilities(small_images):
    model = SmoothModel().eval()
    x, t = small_images
    logits = make_explainer("integrated_gradients", model, n_steps=32).attribute(x, t)
    probs = make_explainer("integrated_gradients", model, n_steps=32, output="softmax").attribute(x, t)
    assert not torch.allclose(logits, probs)
    with torch.no_grad():
        p_x = torch.softmax(model(x), -1)[torch.arange(2), t]
        p_b = torch.softmax(model(torch.zeros_like(x)), -1)[torch.arange(2), t]
    torch.testing.assert_close(probs.sum(dim=(1, 2)), p_x - p_b, rtol=0, atol=1e-3)


def test_softmax_output_changes_surgery_methods(fer, images):
    x, t = images
    for name in ("saliency", "deeplift", "guided_backprop"):
        a = make_explainer(name, fer, arch="fer_cnn").attribute(x, t)
        b = make_explainer(name, fer, arch="fer_cnn", output="softmax").attribute(x, t)
        assert not torch.allclose(a, b), name


# --------------------------------------------------------------------------- baselines


def test_reference_baselines_need_set_reference(fer, images):
    x, t = images
    for name in ("integrated_gradients", "deeplift", "layer_integrated_gradients"):
        explainer = make_explainer(name, fer, arch="fer_cnn", baseline="class_mean", n_steps=4) \
            if "integrated" in name else make_explainer(name, fer, arch="fer_cnn", baseline="class_mean")
        assert explainer.required_references() == ("class_means",)
        with pytest.raises(ExplainerConfigError, match=rf"{name}.*'baseline'.*class_means"):
            explainer.attribute(x, t)
    with pytest.raises(ExplainerConfigError, match="integrated_gradients.*mean_image"):
        make_explainer("integrated_gradients", fer, baseline="mean").attribute(x, t)


def test_class_mean_baseline_is_the_target_class_mean(linear, small_images):
    x, t = small_images
    class_means = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(13))
    explainer = make_explainer("integrated_gradients", linear, baseline="class_mean", n_steps=4)
    explainer.set_reference(class_means=class_means)
    maps = explainer.attribute(x, t)
    torch.testing.assert_close(maps, linear.w(t)[:, 0] * (x - class_means[t])[:, 0], rtol=1e-4, atol=1e-5)
    mean = make_explainer("deeplift", linear, baseline="mean").set_reference(mean_image=class_means[0])
    torch.testing.assert_close(mean.attribute(x, t), linear.w(t)[:, 0] * (x - class_means[0])[:, 0])
    with pytest.raises(ValueError, match="integrated_gradients.*class"):  # target 2 has no mean
        explainer.set_reference(class_means=class_means[:2]).attribute(x, t)


def test_make_and_sample_baselines(images):
    x, t = images
    flat = torch.full((1, 1, 6, 6), 0.3)
    torch.testing.assert_close(gaussian_blur(flat, 4.0), flat)  # edges replicated, mass kept
    blurred = make_baseline("blur", x, t, blur_sigma=2.0)
    assert blurred.shape == x.shape and blurred.std() < x.std()
    noise = make_baseline("uniform", x, t, generator=torch.Generator().manual_seed(0))
    assert noise.shape == x.shape and 0 <= noise.min() and noise.max() <= 1
    assert torch.equal(make_baseline("black", x, t), torch.zeros_like(x))
    draws = sample_baselines("uniform", x, t, 5)
    assert draws.shape == (3, 5, 1, 16, 16)
    refs = torch.rand(4, 1, 16, 16)
    picked = sample_baselines("reference", x, t, 6, images=refs)
    assert all(any(torch.equal(p, r) for r in refs) for p in picked.reshape(-1, 1, 16, 16))
    with pytest.raises(ValueError, match="mean_image"):
        make_baseline("mean", x, t)
    with pytest.raises(ValueError, match="shape"):
        make_baseline("mean", x, t, mean_image=torch.zeros(1, 8, 8))


# --------------------------------------------------------------------------- layers


def test_layers_resolve_with_defaults_and_close_names(fer, resnet):
    assert default_layer_path(fer, "fer_cnn") == "features.block3.relu2"
    assert default_layer_path(resnet, "resnet18") == "layer4"
    assert resolve_layer(fer, "features.block3.relu2") is fer.features.block3.relu2
    with pytest.raises(LayerNotFoundError, match="features.block3.relu2"):
        resolve_layer(fer, "features.block3.relu3")
    with pytest.raises(ExplainerConfigError, match="layer_integrated_gradients.*'layer'.*layer4"):
        make_explainer("layer_integrated_gradients", resnet, arch="resnet18", layer="layer5")
    with pytest.raises(ExplainerConfigError, match="guided_gradcam.*'layer'.*no default"):
        make_explainer("guided_gradcam", fer)  # arch unknown: no default layer


def test_layer_integrated_gradients_options(fer, images):
    x, t = images
    out = make_explainer("layer_integrated_gradients", fer, arch="fer_cnn", n_steps=4,
                         layer="features.block2", attribute_to_layer_input=True).attribute(x, t)
    assert out.shape == (3, 16, 16) and torch.isfinite(out).all()


def test_vit_small(images):
    x, t = images
    torch.manual_seed(0)
    vit = build_model("vit_small", 7, 1, 16, num_layers=2, hidden_dim=24, mlp_dim=48, num_heads=2)
    for name in ("deeplift", "deeplift_shap", "guided_backprop", "deconvolution", "guided_gradcam"):
        with pytest.raises(UnsupportedModelError, match=rf"'{name}'.*'vit_small'"):
            make_explainer(name, vit, arch="vit_small")
    # path methods work, the layer variant maps its tokens back onto the patch grid
    for name in ("integrated_gradients", "layer_integrated_gradients"):
        maps = make_explainer(name, vit, arch="vit_small", n_steps=4).attribute(x, t)
        assert maps.shape == (3, 16, 16) and torch.isfinite(maps).all()


# --------------------------------------------------------------------------- surgery


@pytest.mark.parametrize("arch", ["resnet18", "resnet50", "densenet121"])
def test_surgery_keeps_outputs_and_names(arch):
    torch.manual_seed(0)
    model = _randomise_bn(build_model(arch, 7, 1, 32))
    prepared = prepare_for_attribution(model)
    x = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(14))
    with torch.no_grad():
        assert torch.equal(model(x), prepared(x))
    original = dict(model.named_modules())
    assert set(original) <= set(dict(prepared.named_modules()))
    assert all(n == 1 for n in activation_calls(prepared, x[:1]).values())
    assert not any(getattr(m, "inplace", False) for m in prepared.modules())
    assert prepared is not model and all(a is not b for a, b in zip(model.parameters(), prepared.parameters()))


def test_surgery_lets_captum_deeplift_run_on_resnet18(resnet):
    from captum.attr import DeepLift

    x = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(15))
    t = torch.tensor([0, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(RuntimeError, match="more than once"):
            DeepLift(resnet).attribute(x, baselines=torch.zeros_like(x), target=t)
        maps = DeepLift(prepare_for_attribution(resnet)).attribute(x, baselines=torch.zeros_like(x), target=t)
    assert torch.isfinite(maps).all()


class ReusesActivation(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 2, 3, padding=1)
        self.conv2 = nn.Conv2d(2, 2, 3, padding=1)
        self.act = nn.ReLU()
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 3))

    def forward(self, x):
        return self.head(self.act(self.conv2(self.act(self.conv1(x)))))


def test_unfixable_reuse_is_reported():
    model = ReusesActivation().eval()
    with pytest.raises(SurgeryError, match=r"'act' \(2 calls\)"):
        prepare_for_attribution(model)
    with pytest.raises(UnsupportedModelError, match=r"'deeplift'.*'ReusesActivation'.*'act'"):
        make_explainer("deeplift", model)


# --------------------------------------------------------------------------- errors


def test_target_count_and_parameter_errors(fer, images):
    x, t = images
    with pytest.raises(ValueError, match="3 images but 2 targets"):
        make_explainer("saliency", fer).attribute(x, t[:2])
    with pytest.raises(ExplainerConfigError, match=r"'integrated_gradients'.*\['steps'\]"):
        make_explainer("integrated_gradients", fer, steps=10)
    bad = [("integrated_gradients", {"n_steps": 0}, "n_steps"),
           ("integrated_gradients", {"method": "simpson"}, "method"),
           ("integrated_gradients", {"baseline": "white"}, "baseline"),
           ("deeplift", {"baseline": "reference"}, "baseline"),  # distributions only
           ("smoothgrad", {"aggregation": "max"}, "aggregation"),
           ("smoothgrad", {"stdevs": 2.0}, "stdevs"),
           ("saliency", {"abs": "yes"}, "abs"),
           ("deeplift_shap", {"n_baselines": 0}, "n_baselines"),
           ("gradient_shap", {"blur_sigma": -1}, "blur_sigma"),
           ("guided_gradcam", {"interpolate_mode": "cubic"}, "interpolate_mode")]
    for name, params, param in bad:
        with pytest.raises(ExplainerConfigError, match=rf"'{name}'.*'{param}'"):
            make_explainer(name, fer, arch="fer_cnn", **params)
