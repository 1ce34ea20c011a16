"""LRP (zennit): shapes, determinism, relevance conservation per architecture, refusals."""

import math

import pytest
import torch
from torch import nn

from ferxai.explain import ExplainerConfigError, UnsupportedModelError, make_explainer
from ferxai.explain.methods.lrp import COMPOSITES, LRP, conservation_ratio
from ferxai.models.densenet import densenet_bn_pairs
from ferxai.models.zoo import build_model

TARGETS = torch.tensor([0, 3, 6])


def _images(channels, size, n=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, channels, size, size, generator=g)


@torch.no_grad()
def _random_bn(model, seed=2):
    """Non-trivial BN statistics, so merging BN into convolutions actually changes something."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.rand(c, generator=g) - 0.5)
            m.running_var.copy_(0.5 + 1.5 * torch.rand(c, generator=g))
            m.weight.copy_(0.5 + torch.rand(c, generator=g))
            m.bias.copy_(0.6 * torch.rand(c, generator=g) - 0.3)
    return model


@torch.no_grad()
def _zero_biases(model):
    """Remove every additive term (conv/linear biases, BN shifts): LRP must then conserve exactly."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.zero_()
            m.bias.zero_()
        elif isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
            m.bias.zero_()
    return model


def _model(arch, size, biased=True, seed=0, **kw):
    torch.manual_seed(seed)
    model = _random_bn(build_model(arch, 7, 1, size, **kw)).eval()
    return model if biased else _zero_biases(model)


@pytest.fixture(scope="module")
def fer():
    # non-trivial normalisation: relevance must pass `input_norm` unchanged (plain gradient: x 1/std = 5)
    return _model("fer_cnn", 16, widths=[4, 8, 8], normalization={"mean": [0.3], "std": [0.2]})


@pytest.fixture(scope="module")
def resnet():
    return _model("resnet18", 32)


@pytest.fixture(scope="module")
def densenet():
    return _model("densenet121", 32)


def _ratios(model, x, composite, **kw):
    e = LRP(model, composite=composite, **kw)
    maps = e.attribute(x, TARGETS[: len(x)])
    return e, maps


# --------------------------------------------------------------------------- basic behaviour


@pytest.mark.parametrize("composite", COMPOSITES)
def test_fer_cnn_shape_finite_deterministic_and_model_restored(fer, composite):
    x = _images(1, 16)
    with torch.no_grad():
        before = fer(x)
    state = {k: v.clone() for k, v in fer.state_dict().items()}
    e = LRP(fer, arch="fer_cnn", composite=composite)
    a, b = e.attribute(x, TARGETS), e.attribute(x, TARGETS)
    assert a.shape == (3, 16, 16) and a.dtype == torch.float32
    assert torch.isfinite(a).all() and a.abs().sum() > 0
    assert torch.equal(a, b)
    # canonizers (BN merge) and hooks are undone: same weights, same outputs, no hooks left
    assert all(torch.equal(state[k], v) for k, v in fer.state_dict().items())
    with torch.no_grad():
        assert torch.equal(fer(x), before)
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in fer.modules())


@pytest.mark.parametrize("arch", ["resnet", "densenet"])
def test_torchvision_models_shape_finite_deterministic(arch, request):
    model = request.getfixturevalue(arch)
    x = _images(1, 32)
    with torch.no_grad():
        before = model(x)
    e = make_explainer("lrp", model, arch=arch)  # default composite: epsilon_plus_flat
    a, b = e.attribute(x, TARGETS), e.attribute(x, TARGETS)
    assert a.shape == (3, 32, 32) and torch.isfinite(a).all() and a.abs().sum() > 0
    assert torch.equal(a, b)
    with torch.no_grad():
        assert torch.equal(model(x), before)
    # the canonizers' instance attributes (ResNet's Sum, DenseNet's head modules) are removed
    assert not any(hasattr(m, "canonizer_sum") or hasattr(m, "canonizer_relu") for m in model.modules())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def test_chunking_and_no_grad_context_do_not_change_results(fer):
    x = _images(1, 16, n=5)
    t = torch.tensor([0, 1, 2, 3, 4])
    whole = LRP(fer, batch_size=8)
    chunked = LRP(fer, batch_size=2)
    a = whole.attribute(x, t)
    with torch.no_grad():  # the pipeline may call under no_grad; LRP needs a backward pass
        b = chunked.attribute(x, t)
    assert torch.allclose(a, b, atol=1e-6)
    assert torch.allclose(whole.last_conservation, chunked.last_conservation, atol=1e-5)


def test_describe_and_registry(fer):
    e = make_explainer("lrp", fer, arch="fer_cnn", composite="alpha2_beta1", epsilon=0.01)
    d = e.describe()
    assert (d["name"], d["family"], d["library"], d["signed"]) == ("lrp", "lrp", "zennit", True)
    assert d["params"] == {"composite": "alpha2_beta1", "epsilon": 0.01}
    assert e.passes_per_image() == 4.0  # alpha-beta: four modified passes per layer
    assert e.model_inputs_per_image() == 1.0


def test_cost_model_counts_the_modifiers_of_zennit_hidden_layer_rules(fer):
    """The pass count of each composite is the number of parameter modifiers of the rule zennit
    puts on the hidden convolutions (read off the composite, registered on fer_cnn)."""
    for composite in COMPOSITES:
        e = make_explainer("lrp", fer, arch="fer_cnn", composite=composite)
        ctx: dict = {}
        rules = {name: e._composite.module_map(ctx, name, module) for name, module in fer.named_modules()}
        hidden = [rules[name] for name, m in fer.named_modules()
                  if isinstance(m, nn.Conv2d) and name != "features.block1.conv1"]
        assert hidden and all(type(r) is type(hidden[0]) for r in hidden), composite
        assert e.passes_per_image() == len(hidden[0].param_modifiers), composite


# --------------------------------------------------------------------------- conservation


@pytest.mark.parametrize("composite", COMPOSITES)
def test_zero_bias_fer_cnn_conserves_the_target_logit(composite):
    model = _model("fer_cnn", 16, biased=False, widths=[4, 8, 8],
                   normalization={"mean": [0.3], "std": [0.2]})
    x = _images(1, 16)
    e, maps = _ratios(model, x, composite)
    with torch.no_grad():
        logits = model(x).gather(1, TARGETS[:, None]).squeeze(1)
    # the canonized (BN-merged) model computes the logit up to float rounding
    assert torch.allclose(e.last_target_logits, logits, rtol=1e-4, atol=1e-5)
    assert torch.allclose(e.last_relevance_sums, maps.flatten(1).sum(1), rtol=1e-4, atol=1e-6)
    # exact up to epsilon/stabilisers; without the Pass rule on input_norm it would be 1/std = 5
    assert torch.allclose(e.last_conservation, torch.ones(3), atol=1e-2), e.last_conservation


@pytest.mark.parametrize(("arch", "composite"), [
    ("resnet18", "epsilon"),
    ("resnet18", "epsilon_plus_flat"),
    ("densenet121", "epsilon_plus_flat"),
])
def test_zero_bias_canonized_torchvision_models_conserve(arch, composite):
    model = _model(arch, 32, biased=False)
    e, _ = _ratios(model, _images(1, 32), composite)
    # measured 0.9996-1.0000; tolerance 1 %
    assert torch.allclose(e.last_conservation, torch.ones(3), atol=1e-2), e.last_conservation


@pytest.mark.parametrize("arch", ["resnet", "densenet"])
def test_real_models_ratio_is_sane(arch, request):
    """With biases and BN shifts relevance leaks, but stays on the logit's scale (not ~1e8)."""
    model = request.getfixturevalue(arch)
    e, _ = _ratios(model, _images(1, 32), "epsilon_plus_flat")
    r = e.last_conservation
    assert r.shape == (3,) and torch.isfinite(r).all()
    # z+ only loses relevance to positive biases: 0 < ratio <= 1 (measured 0.38-0.69)
    assert (r > 0.05).all() and (r < 1.05).all(), r


def test_residual_sum_needs_the_resnet_canonizer():
    """Why the canonizer matters: without zennit's Sum module, the residual adds get no rule."""
    from zennit.canonizers import SequentialMergeBatchNorm

    model = _model("resnet18", 32, biased=False)
    e = LRP(model, composite="epsilon")
    e._composite.canonizers = [SequentialMergeBatchNorm()]  # BN merge only, residual add left as is
    e.attribute(_images(1, 32), TARGETS)
    assert (e.last_conservation.abs() > 1e3).all(), e.last_conservation


@pytest.mark.filterwarnings("ignore:Input Tensor 0 did not already require gradients")
def test_captum_lrp_does_not_conserve_on_resnet():
    """Informational: Captum's LRP on the same zero-bias ResNet (exact answer: ratio 1)."""
    captum_attr = pytest.importorskip("captum.attr")
    from captum.attr._utils.lrp_rules import IdentityRule

    # captum has no rule for nn.Identity (the small stem's max-pool), so use the ImageNet stem
    model = _model("resnet18", 32, biased=False, small_stem=False)
    model.input_norm.rule = IdentityRule()
    x = _images(1, 32)
    with torch.no_grad():
        logits = model(x).gather(1, TARGETS[:, None]).squeeze(1)
    attr = captum_attr.LRP(model).attribute(x.clone(), target=TARGETS)
    ratio = conservation_ratio(attr, logits)
    assert (ratio.abs() > 1e2).all(), ratio  # measured ~1e9-1e10


def test_conservation_ratio_helper():
    rel = torch.ones(2, 1, 4, 4)
    assert torch.allclose(conservation_ratio(rel, torch.tensor([16.0, 8.0])), torch.tensor([1.0, 2.0]))
    assert torch.allclose(conservation_ratio(torch.tensor([3.0]), torch.tensor([6.0])), torch.tensor([0.5]))


# --------------------------------------------------------------------------- DenseNet canonizer


def test_densenet_merges_only_true_conv_bn_pairs(densenet):
    names = dict(densenet.named_modules())
    pairs = densenet_bn_pairs(densenet)
    assert (("features.conv0",), "features.norm0") in pairs
    assert len(pairs) == 1 + 6 + 12 + 24 + 16  # conv0 + conv1->norm2 in each dense layer
    for (conv,), bn in pairs:
        assert names[conv].out_channels == names[bn].num_features
    merged = {bn for _, bn in pairs}
    assert "features.norm5" not in merged and "features.transition1.norm" not in merged


# --------------------------------------------------------------------------- refusals


def test_vit_is_unsupported():
    vit = build_model("vit_small", 7, 1, 16, patch_size=4, num_layers=1, num_heads=2, hidden_dim=8, mlp_dim=8)
    with pytest.raises(UnsupportedModelError) as err:
        LRP(vit, arch="vit_small")
    assert err.value.method == "lrp" and err.value.model == "vit_small"
    assert "attention" in err.value.reason


def test_epsilon_composite_refused_on_densenet(densenet):
    with pytest.raises(UnsupportedModelError, match="densenet121.*epsilon_plus_flat"):
        LRP(densenet, arch="densenet121", composite="epsilon")


def test_unknown_architecture_is_unsupported():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.LazyLinear(3))
    with pytest.raises(UnsupportedModelError, match="no LRP canonizer"):
        LRP(model)


def test_softmax_output_and_bad_params_are_config_errors(fer):
    with pytest.raises(ExplainerConfigError, match="logit"):
        LRP(fer, output="softmax")
    with pytest.raises(ExplainerConfigError, match="composite"):
        LRP(fer, composite="gamma")
    for bad in (0, -1.0, "small", True, math.nan):
        with pytest.raises(ExplainerConfigError, match="epsilon"):
            LRP(fer, epsilon=bad)
    with pytest.raises(ExplainerConfigError, match="unknown parameter"):
        LRP(fer, rule="epsilon")
