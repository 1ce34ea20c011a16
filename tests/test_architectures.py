"""The architecture catalog and its implementation modules: one place per architecture."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import types

import pytest
import torch
from torch import nn

from ferxai.config import ConfigError, check_model_options
from ferxai.explain.layers import default_layer_path
from ferxai.models import catalog, zoo
from ferxai.models.common import InputNormalization, input_norm


def _fresh_python(code: str) -> dict:
    """Run `code` in a new interpreter (nothing imported yet); it prints one JSON object."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _small(arch: str) -> dict:
    # The smallest settings of each family that still build quickly on CPU.
    return {"vit_small": {"num_layers": 2, "hidden_dim": 12, "mlp_dim": 12, "num_heads": 2}}.get(arch, {})


def test_catalog_imports_without_torch():
    got = _fresh_python(
        "import sys, json\n"
        "from ferxai.models import catalog\n"
        "opts = {a: catalog.model_options(a) for a in catalog.ARCHITECTURES}\n"
        "print(json.dumps({'loaded': sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'torchvision', 'numpy')), 'archs': sorted(opts)}))"
    )
    assert got["loaded"] == []
    assert got["archs"] == sorted(catalog.ARCHITECTURES)


def test_config_check_reads_the_catalog_without_torch():
    got = _fresh_python(
        "import sys, json\n"
        "from ferxai.config import ConfigError, check_model_options\n"
        "check_model_options('m', {'arch': 'resnet18', 'options': {'small_stem': True}})\n"
        "try:\n"
        "    check_model_options('m', {'arch': 'fer_cnn', 'options': {'small_stem': True}})\n"
        "    err = ''\n"
        "except ConfigError as e:\n"
        "    err = str(e)\n"
        "print(json.dumps({'torch': 'torch' in sys.modules, 'err': err}))"
    )
    assert got["torch"] is False
    assert "models.m.options" in got["err"] and "small_stem" in got["err"] and "widths" in got["err"]


def test_fer_cnn_build_save_load_and_surgery_do_not_import_torchvision(tmp_path):
    got = _fresh_python(
        "import sys, json\n"
        "from ferxai.models import build_model, checkpoint_meta, load_checkpoint, model_normalization, "
        "save_checkpoint\n"
        "from ferxai.explain.layers import default_layer_path\n"
        "from ferxai.explain.surgery import prepare_for_attribution\n"
        "m = build_model('fer_cnn', 3, 1, 16, widths=[4, 8])\n"
        "meta = checkpoint_meta(arch='fer_cnn', classes=['a', 'b', 'c'], in_channels=1,\n"
        "    input_size=16, normalization=model_normalization(m), model_options={'widths': [4, 8]})\n"
        f"save_checkpoint({str(tmp_path / 'm.pt')!r}, m, meta)\n"
        f"back, _ = load_checkpoint({str(tmp_path / 'm.pt')!r})\n"
        "prepare_for_attribution(back)\n"
        "layer = default_layer_path(back, 'fer_cnn')\n"
        "print(json.dumps({'torchvision': 'torchvision' in sys.modules, 'layer': layer}))"
    )
    assert got == {"torchvision": False, "layer": "features.block2.relu2"}


@pytest.mark.parametrize("arch", sorted(catalog.ARCHITECTURES))
def test_catalog_options_are_the_builders_options(arch):
    build = zoo.implementation(arch).build
    params = inspect.signature(build).parameters.values()
    keyword = {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert keyword == catalog.model_options(arch)
    assert zoo.model_options(arch) == catalog.model_options(arch)
    # the positional part is the same for every family: build_model passes it that way
    positional = [p.name for p in params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    assert positional == ["arch", "num_classes", "in_channels", "input_size", "pretrained", "normalization"]


def test_model_options_is_a_copy():
    options = catalog.model_options("vit_small")
    options["num_layers"] = 99
    assert catalog.model_options("vit_small")["num_layers"] == 6


@pytest.mark.parametrize("arch", sorted(catalog.ARCHITECTURES))
def test_default_target_and_first_layer_resolve_on_a_built_model(arch):
    torch.manual_seed(0)
    model = zoo.build_model(arch, 5, 1, 32, **_small(arch)).eval()
    family = catalog.family(arch)
    assert zoo.family_of(model) == family
    path = default_layer_path(model, arch)
    assert path == zoo.default_target_layer(arch, _small(arch))
    target = model.get_submodule(path)
    first = model.get_submodule(family.first_layer)
    seen: dict = {}
    model.input_norm.register_forward_hook(lambda m, i, o: seen.__setitem__("pixels", o))
    first.register_forward_hook(lambda m, i, o: seen.__setitem__("first_in", i[0]))
    target.register_forward_hook(lambda m, i, o: seen.__setitem__("target", o))
    with torch.no_grad():
        model(torch.rand(2, 1, 32, 32))
    # the first layer is fed by the normalised pixels themselves ...
    assert seen["first_in"] is seen["pixels"]
    # ... and the target layer is a spatial map (feature map, or tokens on a patch grid)
    assert seen["target"].ndim in (3, 4) and seen["target"].shape[0] == 2


def test_target_layer_follows_the_options():
    fer = zoo.build_model("fer_cnn", 5, 1, 32, widths=[4, 8])
    assert default_layer_path(fer, "fer_cnn") == "features.block2.relu2"
    vit = zoo.build_model("vit_small", 5, 1, 16, num_layers=3, hidden_dim=8, mlp_dim=8, num_heads=2)
    assert default_layer_path(vit, "vit_small") == "encoder.layers.encoder_layer_2.ln_1"
    assert zoo.default_target_layer("vit_small") == "encoder.layers.encoder_layer_5.ln_1"


def test_family_of_plain_torchvision_and_foreign_models():
    import torchvision

    assert zoo.family_of(torchvision.models.resnet18(weights=None)) == catalog.FAMILIES["resnet"]
    assert zoo.family_of(nn.Sequential(nn.Conv2d(1, 2, 3))) is None


def test_unknown_arch_is_a_config_error_naming_the_key():
    with pytest.raises(ConfigError, match=r"models\.big\.arch: unknown arch 'vgg99'.*fer_cnn"):
        check_model_options("big", {"arch": "vgg99"})
    with pytest.raises(catalog.ModelConfigError, match="unknown arch"):
        zoo.build_model("vgg99", 3)


# --------------------------------------------------------------------------- a new architecture


class _TinyNet(nn.Module):
    def __init__(self, num_classes: int, in_channels: int, width: int, normalization) -> None:
        super().__init__()
        self.input_norm = input_norm(normalization)
        self.stem = nn.Conv2d(in_channels, width, 3, padding=1)
        self.act = nn.ReLU()
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act(self.stem(self.input_norm(x))).mean(dim=(2, 3)))


def _tiny_module() -> types.ModuleType:
    module = types.ModuleType("ferxai_test_tinynet")

    def build(arch, num_classes, in_channels, input_size, pretrained, normalization, *, width=4):
        return _TinyNet(num_classes, in_channels, width, normalization)

    module.build = build
    module.owns = lambda model: isinstance(model, _TinyNet)
    return module


def test_a_new_architecture_is_one_module_and_one_catalog_entry(monkeypatch):
    monkeypatch.setitem(sys.modules, "ferxai_test_tinynet", _tiny_module())
    monkeypatch.setitem(catalog.FAMILIES, "tiny", catalog.Family(
        "tiny", "ferxai_test_tinynet", target_layer="act", first_layer="stem"))
    monkeypatch.setitem(catalog.ARCHITECTURES, "tinynet", catalog.Architecture("tinynet", "tiny", {"width": 4}))

    check_model_options("t", {"arch": "tinynet", "options": {"width": 6}})
    with pytest.raises(ConfigError, match="depth"):
        check_model_options("t", {"arch": "tinynet", "options": {"depth": 2}})
    assert "tinynet" in zoo.ARCHITECTURES
    model = zoo.build_model("tinynet", 3, 1, 16, width=6)
    assert isinstance(model.input_norm, InputNormalization) and model.stem.out_channels == 6
    assert default_layer_path(model, "tinynet") == "act"
    assert zoo.family_of(model) == catalog.FAMILIES["tiny"]  # via `owns`: the class lives elsewhere
    # the generic explainer machinery picks it up: a CAM finds its default layer by itself
    from ferxai.explain import make_explainer

    maps = make_explainer("gradcam", model.eval(), arch="tinynet").attribute(
        torch.rand(2, 1, 16, 16), torch.tensor([0, 2]))
    assert maps.shape == (2, 16, 16) and torch.isfinite(maps).all()
