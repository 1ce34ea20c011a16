"""Model zoo: every architecture builds, forwards, keeps torchvision's layer names and is
attribution-friendly (normalisation inside the model, no in-place ReLUs, big enough maps)."""

from __future__ import annotations

import copy
import logging
import urllib.error

import pytest
import torch
from torch import nn
from torchvision.models import DenseNet121_Weights, ResNet18_Weights

from ferxai.models import (
    ARCHITECTURES,
    InputNormalization,
    ModelConfigError,
    PretrainedWeightsError,
    build_model,
    default_normalization,
    default_target_layer,
    model_normalization,
    model_options,
)
from ferxai.models.common import IMAGENET_MEAN, IMAGENET_STD

ARCHS = ["fer_cnn", "resnet18", "resnet34", "resnet50", "densenet121", "vit_small"]
SIZES = [32, 48, 64]


def _recorder(store: dict, key: str):
    """A forward hook that stores the output (and returns None, so the output is unchanged)."""
    def hook(module, inputs, output):
        store[key] = output
    return hook


def _forward(model: nn.Module, channels: int, size: int) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.rand(2, channels, size, size))


def test_registry_lists_every_arch():
    assert sorted(ARCHITECTURES) == sorted(ARCHS)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("arch", ARCHS)
def test_builds_and_forwards(arch, size, channels):
    torch.manual_seed(0)
    model = build_model(arch, num_classes=7, in_channels=channels, input_size=size).eval()
    out = _forward(model, channels, size)
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("arch,layer", [
    ("resnet18", "layer4"), ("resnet34", "layer4"), ("resnet50", "layer4"), ("densenet121", "features"),
])
def test_final_feature_map_is_at_least_4x4(arch, layer, size):
    # The small-input stem exists so that Grad-CAM gets more than a 2x2 map at 32-64 px.
    model = build_model(arch, 7, 1, size).eval()
    seen = {}
    model.get_submodule(layer).register_forward_hook(_recorder(seen, "out"))
    _forward(model, 1, size)
    h, w = seen["out"].shape[-2:]
    assert h >= 4 and w >= 4
    assert (h, w) == (size // 8, size // 8)


def test_resnet18_layer4_is_6x6_at_48px():
    model = build_model("resnet18", 7, 1, 48).eval()
    seen = {}
    model.layer4.register_forward_hook(_recorder(seen, "out"))
    _forward(model, 1, 48)
    assert tuple(seen["out"].shape[-2:]) == (6, 6)


def test_small_stem_only_below_65px():
    small = build_model("resnet18", 7, 1, 64)
    assert small.conv1.kernel_size == (3, 3) and small.conv1.stride == (1, 1)
    assert isinstance(small.maxpool, nn.Identity)
    big = build_model("resnet18", 7, 1, 96)
    assert big.conv1.kernel_size == (7, 7) and big.conv1.stride == (2, 2)
    assert big.conv1.in_channels == 1
    assert isinstance(big.maxpool, nn.MaxPool2d)
    dense = build_model("densenet121", 7, 3, 48)
    assert dense.features.conv0.kernel_size == (3, 3) and dense.features.conv0.in_channels == 3
    assert isinstance(dense.features.pool0, nn.Identity)
    # Explicit option overrides the size rule.
    forced = build_model("resnet18", 7, 1, 96, small_stem=True)
    assert forced.conv1.kernel_size == (3, 3)


@pytest.mark.parametrize("arch,paths", [
    ("resnet18", ["conv1", "layer4", "layer4.1.conv2", "fc"]),
    ("densenet121", ["features.conv0", "features.denseblock4", "features.norm5", "classifier"]),
    ("vit_small", ["conv_proj", "encoder.layers.encoder_layer_5", "heads.head"]),
    ("fer_cnn", ["features.block3.relu2", "classifier"]),
])
def test_torchvision_names_stay_at_top_level(arch, paths):
    model = build_model(arch, 7, 1, 48)
    for path in paths:
        model.get_submodule(path)
    assert model.get_submodule(default_target_layer(arch)) is not None
    keys = list(model.state_dict())
    assert "input_norm.mean" in keys and "input_norm.std" in keys
    assert not any(k.startswith(("module.", "inner.", "model.")) for k in keys)


def test_fer_cnn_relus_are_unique_and_not_inplace():
    model = build_model("fer_cnn", 7, 1, 48, widths=[8, 16, 32])
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    assert len(relus) == 6
    assert len({id(m) for m in relus}) == len(relus)
    assert not any(m.inplace for m in relus)


@pytest.mark.parametrize("arch", ["resnet18", "densenet121"])
def test_torchvision_relus_not_inplace(arch):
    model = build_model(arch, 7, 1, 32)
    assert not any(m.inplace for m in model.modules() if isinstance(m, nn.ReLU))


def test_fer_cnn_options():
    model = build_model("fer_cnn", 5, 3, 32, widths=[4, 8], dropout=0.1)
    assert model.classifier.in_features == 8 and model.classifier.out_features == 5
    assert model.dropout.p == 0.1
    assert default_target_layer("fer_cnn", {"widths": [4, 8]}) == "features.block2.relu2"
    assert model_options("fer_cnn") == {"widths": (32, 64, 128), "dropout": 0.3}


def test_model_normalises_inputs_in_image_space():
    norm = {"mean": [0.2], "std": [0.4]}
    model = build_model("fer_cnn", 3, 1, 32, normalization=norm).eval()
    got = model_normalization(model)
    assert got["mean"] == pytest.approx([0.2]) and got["std"] == pytest.approx([0.4])
    seen = {}
    model.input_norm.register_forward_hook(_recorder(seen, "out"))
    x = torch.rand(2, 1, 32, 32, requires_grad=True)
    model(x)[:, 0].sum().backward()
    assert torch.allclose(seen["out"], (x - 0.2) / 0.4)
    assert x.grad is not None and x.grad.abs().sum() > 0  # gradients reach [0, 1] inputs


@pytest.mark.parametrize("arch", ["resnet18", "densenet121", "vit_small"])
def test_torchvision_models_normalise_too(arch):
    model = build_model(arch, 3, 1, 32, normalization={"mean": [0.3], "std": [0.7]}).eval()
    calls = []
    model.input_norm.register_forward_hook(lambda m, i, o: calls.append(1))
    _forward(model, 1, 32)
    assert calls == [1]


def test_default_normalization():
    assert default_normalization(1) == {"mean": [0.5], "std": [0.5]}
    assert default_normalization(3, pretrained=True) == {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
    grey = default_normalization(1, pretrained=True)
    assert grey["mean"] == pytest.approx([sum(IMAGENET_MEAN) / 3])
    assert grey["std"] == pytest.approx([sum(IMAGENET_STD) / 3])


def test_wrong_channel_count_at_forward_is_clear():
    model = build_model("fer_cnn", 7, 1, 32).eval()
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        _forward(model, 3, 32)


def test_deepcopy_keeps_behaviour():
    torch.manual_seed(0)
    model = build_model("resnet18", 7, 1, 32).eval()
    clone = copy.deepcopy(model)
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), clone(x))
    assert clone.input_norm is not model.input_norm


@pytest.mark.parametrize("kwargs,match", [
    ({"arch": "vgg99"}, "unknown arch"),
    ({"arch": "fer_cnn", "in_channels": 2}, "in_channels"),
    ({"arch": "fer_cnn", "num_classes": 1}, "num_classes"),
    ({"arch": "fer_cnn", "depth": 3}, r"unknown model option.*depth"),
    ({"arch": "resnet18", "widths": [1]}, r"unknown model option.*widths"),
    ({"arch": "fer_cnn", "normalization": {"mean": [0.5, 0.5], "std": [0.5, 0.5]}}, "normalization.mean"),
    ({"arch": "fer_cnn", "pretrained": True}, "fer_cnn has no pretrained"),
    ({"arch": "vit_small", "pretrained": True}, "vit_small has no pretrained"),
    ({"arch": "vit_small", "input_size": 50}, r"vit_small: patch_size 4 must divide input_size 50"),
    ({"arch": "vit_small", "input_size": 48, "patch_size": 5}, r"patch_size 5 must divide input_size 48"),
])
def test_config_errors_are_clear(kwargs, match):
    args = {"num_classes": 7, "in_channels": 1, "input_size": 48, **kwargs}
    with pytest.raises(ModelConfigError, match=match):
        build_model(**args)


# ---------------------------------------------------------------- pretrained, without network


def _fake_weights(builder, monkeypatch, weights_cls):
    """Serve a seeded random ImageNet-shaped state dict instead of downloading."""
    torch.manual_seed(123)
    reference = builder(weights=None).state_dict()
    calls = []

    def get_state_dict(self, *args, **kwargs):
        calls.append(self)
        return {k: v.clone() for k, v in reference.items()}

    monkeypatch.setattr(weights_cls, "get_state_dict", get_state_dict)
    return reference, calls


def test_pretrained_grey_sums_rgb_kernels_when_stem_is_kept(monkeypatch):
    import torchvision
    ref, calls = _fake_weights(torchvision.models.resnet18, monkeypatch, ResNet18_Weights)
    model = build_model("resnet18", 7, 1, 96, pretrained=True)
    assert calls, "the weights loader was not used"
    assert model.conv1.weight.shape == (64, 1, 7, 7)
    assert torch.allclose(model.conv1.weight, ref["conv1.weight"].sum(1, keepdim=True))
    assert torch.equal(model.layer4[1].conv2.weight, ref["layer4.1.conv2.weight"])
    assert model.fc.out_features == 7
    assert model_normalization(model)["mean"] == pytest.approx([sum(IMAGENET_MEAN) / 3])


def test_pretrained_rgb_keeps_first_conv(monkeypatch):
    import torchvision
    ref, _ = _fake_weights(torchvision.models.resnet18, monkeypatch, ResNet18_Weights)
    model = build_model("resnet18", 4, 3, 96, pretrained=True)
    assert torch.equal(model.conv1.weight, ref["conv1.weight"])


def test_pretrained_small_stem_is_reinitialised_with_warning(monkeypatch, caplog):
    import torchvision
    ref, _ = _fake_weights(torchvision.models.densenet121, monkeypatch, DenseNet121_Weights)
    with caplog.at_level(logging.WARNING, logger="ferxai.models.common"):
        model = build_model("densenet121", 7, 1, 48, pretrained=True)
    assert "re-initialised" in caplog.text
    assert model.features.conv0.weight.shape == (64, 1, 3, 3)
    key = "features.denseblock4.denselayer16.conv2.weight"
    assert torch.equal(model.state_dict()[key], ref[key])
    assert model.classifier.out_features == 7
    assert _forward(model.eval(), 1, 48).shape == (2, 7)


def test_pretrained_download_failure_is_clear(monkeypatch):
    def offline(self, *args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(ResNet18_Weights, "get_state_dict", offline)
    with pytest.raises(PretrainedWeightsError, match=r"could not be downloaded.*pretrained: false.*model\.checkpoint"):
        build_model("resnet18", 7, 1, 48, pretrained=True)


def test_input_norm_is_a_plain_module():
    norm = InputNormalization([0.5, 0.5, 0.5], [0.25, 0.25, 0.25])
    x = torch.ones(1, 3, 2, 2)
    assert torch.allclose(norm(x), torch.full_like(x, 2.0))
    with pytest.raises(ModelConfigError):
        InputNormalization([0.5], [0.0])


@pytest.mark.parametrize("arch", ARCHS)
def test_default_target_layer_supports_grad_cam_hooks(arch):
    # Grad-CAM style: forward + full backward hook on the target layer, gradients to the input.
    model = build_model(arch, 7, 1, 32).eval()
    layer = model.get_submodule(default_target_layer(arch))
    seen: dict = {}
    layer.register_forward_hook(_recorder(seen, "act"))
    layer.register_full_backward_hook(lambda m, grad_in, grad_out: seen.__setitem__("grad", grad_out[0]))
    x = torch.rand(2, 1, 32, 32, requires_grad=True)
    model(x)[:, 0].sum().backward()
    assert seen["grad"].shape == seen["act"].shape
    assert x.grad is not None


def test_root_pre_hooks_see_unnormalised_inputs():
    # Attribution libraries hook the root to batch inputs with baselines (DeepLIFT); both must
    # then be normalised by the model, which a root pre-hook for normalisation would not do.
    model = build_model("fer_cnn", 3, 1, 32, normalization={"mean": [0.5], "std": [0.25]}).eval()
    baseline = torch.zeros(1, 1, 32, 32)
    model.register_forward_pre_hook(lambda m, args: (torch.cat([args[0], baseline]),))
    seen: dict = {}
    model.input_norm.register_forward_hook(_recorder(seen, "out"))
    with torch.no_grad():
        model(torch.ones(1, 1, 32, 32))
    assert torch.allclose(seen["out"][0], torch.full((1, 32, 32), 2.0))
    assert torch.allclose(seen["out"][1], torch.full((1, 32, 32), -2.0))
