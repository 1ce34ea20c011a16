"""The method catalog: import-free, complete, and the one place parameters are checked."""

import importlib
import importlib.metadata
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from ferxai.config import ConfigError, check_config
from ferxai.explain import catalog
from ferxai.explain.params import ExplainerConfigError


def default_config() -> dict:
    return yaml.safe_load((Path(REPO) / "config" / "config.yaml").read_text())


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **env}, cwd=REPO)


# --------------------------------------------------------------------------- no heavy imports


def test_catalog_registry_listing_and_config_check_import_no_heavy_library():
    code = (
        "import sys, yaml\n"
        "from ferxai.explain import catalog\n"
        "from ferxai.explain.registry import METHODS, method_names\n"
        "from ferxai.config import explain_methods\n"
        "assert len(method_names()) == len(METHODS) == 34, len(METHODS)\n"
        "catalog.check_params('lime', {'num_samples': 50})\n"
        f"explain_methods(yaml.safe_load(open({str(Path(REPO) / 'config' / 'config.yaml')!r})))\n"
        "heavy = sorted(m for m in ('torch', 'numpy', 'pandas', 'captum', 'pytorch_grad_cam', 'zennit',\n"
        "                          'shap', 'lime', 'skimage') if m in sys.modules)\n"
        "assert not heavy, f'imported {heavy}'\n"
    )
    done = run_python(code)
    assert done.returncode == 0, done.stderr


def test_config_check_writes_nothing_under_home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    code = ("import yaml\nfrom ferxai.config import check_config\n"
            f"check_config(yaml.safe_load(open({str(Path(REPO) / 'config' / 'config.yaml')!r})))\n")
    done = run_python(code, HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"))
    assert done.returncode == 0, done.stderr
    assert list(home.rglob("*")) == []


# --------------------------------------------------------------------------- completeness


def _method_classes() -> dict[str, type]:
    """Every Explainer subclass that names a method, found by importing every methods/ module."""
    pytest.importorskip("torch")
    from ferxai.explain import methods
    from ferxai.explain.base import Explainer

    found: dict[str, type] = {}
    for info in pkgutil.iter_modules(methods.__path__):
        module = importlib.import_module(f"{methods.__name__}.{info.name}")
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, Explainer) and obj.__dict__.get("name"):
                found[obj.__dict__["name"]] = obj
    return found


def test_every_method_class_has_a_catalog_entry_and_every_entry_a_class():
    classes = _method_classes()
    assert sorted(classes) == catalog.method_names()
    for name, cls in classes.items():
        entry = catalog.METHODS[name]
        module, qualname = entry.implementation.split(":")
        assert (cls.__module__, cls.__qualname__) == (module, qualname), name
        assert cls.spec is entry, name  # not an ad-hoc entry built from stated defaults


def test_registry_resolves_each_entry_to_its_class_with_the_catalog_attributes():
    pytest.importorskip("torch")
    from ferxai.explain.registry import METHODS, get_method

    assert set(METHODS) == set(catalog.METHODS)
    for name, entry in catalog.METHODS.items():
        cls = get_method(name)
        assert cls.name == name
        assert (cls.family, cls.library) == (entry.family, entry.library)
        assert dict(cls.defaults) == entry.defaults
        assert cls.signed == entry.is_signed()
        entry.check(entry.defaults)  # the defaults pass their own checks
        cls.check_params(entry.defaults)


def test_entries_are_well_formed():
    for name, entry in catalog.METHODS.items():
        assert entry.family in ("gradient", "cam", "perturbation", "lrp", "control"), name
        for key, param in entry.params.items():
            assert param.accepts(param.default), (name, key)
            if param.kind == "choice":
                assert param.default in param.choices, (name, key)
        if entry.library is not None:
            importlib.metadata.distribution(entry.library)  # a real, installed pip distribution


def test_integrated_gradient_quadratures_are_captums():
    pytest.importorskip("captum")
    from captum.attr._utils.approximation_methods import SUPPORTED_METHODS

    assert set(catalog.IG_QUADRATURES) == set(SUPPORTED_METHODS)


def test_implementation_tables_cover_the_catalog_choices():
    pytest.importorskip("captum")
    from ferxai.explain.methods.smoothgrad import AGGREGATIONS

    assert set(AGGREGATIONS) == set(catalog.SMOOTHGRAD_AGGREGATIONS)


def test_a_method_outside_the_catalog_is_checked_by_the_types_of_its_defaults():
    torch = pytest.importorskip("torch")
    from ferxai.explain.base import Explainer

    Double = type("Double", (Explainer,), {"name": "double", "family": "gradient", "defaults": {"n": 2, "w": 0.5}})
    e = Double(torch.nn.Identity(), w=1)
    assert e.params == {"n": 2, "w": 1.0} and e.passes_per_image() == 1
    with pytest.raises(ExplainerConfigError, match=r"'double': parameter 'n' must be an integer, got 'x'"):
        Double(torch.nn.Identity(), n="x")


def test_a_catalog_method_class_may_not_restate_its_entry():
    pytest.importorskip("torch")
    from ferxai.explain.base import Explainer

    with pytest.raises(TypeError, match="defaults.*catalog"):
        type("Restated", (Explainer,), {"name": "saliency", "defaults": {"abs": False}})


# --------------------------------------------------------------------------- checks


@pytest.mark.parametrize("method, params, param, allowed", [
    ("integrated_gradients", {"n_steps": 0}, "n_steps", "an integer >= 1"),
    ("integrated_gradients", {"n_steps": 2.5}, "n_steps", "an integer >= 1"),
    ("integrated_gradients", {"method": "simpson"}, "method", "gausslegendre"),
    ("deeplift", {"baseline": "reference"}, "baseline", "class_mean"),  # distributions only
    ("smoothgrad", {"stdevs": 1.5}, "stdevs", "[0, 1]"),
    ("smoothgrad", {"aggregation": "bogus"}, "aggregation", "grad_x_input"),
    ("saliency", {"abs": 1}, "abs", "true or false"),
    ("gradcam", {"target_layer": ""}, "target_layer", "dotted module path"),
    ("gradcam", {"aug_smooth": "yes"}, "aug_smooth", "true or false"),
    ("lime", {"n_segments": 1}, "n_segments", "or null"),
    ("lime", {"ratio": 2.0}, "ratio", "[0, 1]"),
    ("shap", {"masker": "blur(8)"}, "masker", "blur(kx,ky)"),
    ("shap", {"seed": -1}, "seed", ">= 0"),
    ("rise", {"p": 0.0}, "p", "(0, 1]"),
    ("meaningful_perturbation", {"tv_beta": 0.5}, "tv_beta", ">= 1"),
    ("lrp", {"epsilon": float("nan")}, "epsilon", "> 0"),
    ("lrp", {"composite": "gamma"}, "composite", "epsilon_plus_flat"),
])
def test_bad_values_name_method_parameter_allowed_values_and_value(method, params, param, allowed):
    with pytest.raises(ExplainerConfigError) as info:
        catalog.check_params(method, params)
    message = str(info.value)
    assert f"method {method!r}" in message and f"parameter {param!r}" in message
    assert allowed in message and f"got {params[param]!r}" in message
    assert (info.value.method, info.value.param) == (method, param)


@pytest.mark.parametrize("method, params", [
    ("smoothgrad", {"stdevs": 0}), ("smoothgrad", {"stdevs": 1.0}),  # closed range, ints for floats
    ("rise", {"p": 1}), ("lime", {"n_segments": None, "ratio": 0.0}),
    ("meaningful_perturbation", {"blur_sigma": 0.0}),  # no blur is allowed here, unlike baselines
    ("shap", {"masker": "blur( 4, 6 )"}), ("gradcam", {"target_layer": "layer4"}),
    ("occlusion", {"window": 6, "stride": 6}),
])
def test_values_on_the_boundary_are_accepted(method, params):
    catalog.check_params(method, params)


def test_numpy_numbers_are_accepted_and_resolved_to_plain_python():
    np = pytest.importorskip("numpy")
    entry = catalog.get("rise")
    resolved = entry.resolve({"n_masks": np.int64(20), "p": np.float32(0.25)})
    assert type(resolved["n_masks"]) is int and type(resolved["p"]) is float
    assert resolved == {**entry.defaults, "n_masks": 20, "p": 0.25}


def test_cross_parameter_rule_sees_defaults():
    with pytest.raises(ExplainerConfigError, match=r"'stride' must be <= window \(2\), got 4"):
        catalog.check_params("occlusion", {"window": 2})  # stride keeps its default 4
    with pytest.raises(ExplainerConfigError, match=r"prediction_difference.*'stride'"):
        catalog.check_params("prediction_difference", {"stride": 9})


def test_unknown_method_and_parameter():
    with pytest.raises(ExplainerConfigError, match=r"unknown explanation method 'gradcamm'; known: .*gradcam"):
        catalog.check_params("gradcamm", {})
    with pytest.raises(ExplainerConfigError, match=r"'fullgrad': unknown parameter\(s\) \['target_layer'\]") as info:
        catalog.check_params("fullgrad", {"target_layer": "features"})
    assert info.value.param == "target_layer"


def test_signed_follows_the_parameters():
    assert not catalog.get("saliency").is_signed() and catalog.get("saliency").is_signed({"abs": False})
    smoothgrad = catalog.get("smoothgrad")
    assert [smoothgrad.is_signed({"aggregation": a}) for a in catalog.SMOOTHGRAD_AGGREGATIONS] == \
        [False, False, True, True]
    assert catalog.get("shap").is_signed() and not catalog.get("shap").is_signed({"mode": "abs"})
    assert not catalog.get("gradcam").is_signed() and catalog.get("lrp").is_signed()


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize("label, entry, key", [
    ("integrated_gradients", {"n_steps": 0}, "explain.methods.integrated_gradients.n_steps"),
    ("smoothgrad", {"nt_type": "bogus"}, "explain.methods.smoothgrad.nt_type"),
    ("ig_blur", {"method": "integrated_gradients", "baseline": "blurred"}, "explain.methods.ig_blur.baseline"),
    ("ig_typo", {"method": "integrated_gradient"}, "explain.methods.ig_typo.method"),
    ("gradcamm", {}, "explain.methods.gradcamm"),
])
def test_config_check_names_the_method_parameter_key(label, entry, key):
    cfg = default_config()
    cfg["explain"]["methods"][label] = entry
    with pytest.raises(ConfigError) as info:
        check_config(cfg)
    assert info.value.key == key
    assert str(info.value).startswith(f"{key}: ")


# --------------------------------------------------------------------------- cost model


def test_passes_per_image_of_the_defaults():
    def passes(name, **kw):
        return catalog.get(name).passes_per_image(**kw)

    # one forward+backward pass per image
    for name in ("saliency", "input_x_gradient", "guided_backprop", "deconvolution", "gradcam", "hirescam",
                 "gradcam_elementwise", "gradcam_plusplus", "xgradcam", "eigencam", "eigengradcam",
                 "layercam", "fullgrad"):
        assert passes(name) == 1, name
    assert passes("integrated_gradients") == 50                   # n_steps
    assert passes("layer_integrated_gradients") == 51             # + the activations' forward pass
    assert passes("smoothgrad") == 25 and passes("gradient_shap") == 20
    assert passes("deeplift") == 2 and passes("guided_gradcam") == 2
    assert passes("deeplift_shap") == 16                          # 8 uniform baselines x (input, baseline)
    assert passes("scorecam", channels=128) == 129                # + one per channel
    assert passes("ablationcam", channels=128) == 129           # one recording pass + one per channel
    # 48 px: a window of 8 at stride 4 has (48 - 8) / 4 + 1 = 11 positions per side
    assert passes("occlusion") == 11 * 11 + 1
    assert passes("prediction_difference") == 1 + 11 * 11 * 10
    assert passes("feature_ablation") == (48 // 4) ** 2 + 1
    assert passes("shapley_sampling") == 2 + 25 * ((48 // 8) ** 2 - 1)
    assert passes("lime") == 500 and passes("shap") == 300 and passes("rise") == 1000
    assert passes("meaningful_perturbation") == 100
    assert passes("lrp") == 2                                     # z+ on the hidden convolutions


def test_passes_per_image_follow_parameters_image_side_and_channels():
    def get(name, params=None, **kw):
        return catalog.get(name).passes_per_image(params, **kw)

    assert get("gradcam", {"aug_smooth": True}) == catalog.AUG_SMOOTH_PASSES
    assert get("scorecam", {"aug_smooth": True}, channels=8) == 9 * catalog.AUG_SMOOTH_PASSES
    assert get("deeplift_shap", {"n_baselines": 4, "baseline": "blur"}) == 2  # one distinct baseline
    # 16 px, window 4, stride 2: 7 positions per side; a 20 px window is clipped to the image
    assert get("occlusion", {"window": 4, "stride": 2}, hw=(16, 16)) == 7 * 7 + 1
    assert get("occlusion", {"window": 20, "stride": 20}, hw=(16, 16)) == 1 + 1
    assert get("feature_ablation", {"patch_size": 5}, hw=(16, 12)) == 4 * 3 + 1  # border patches cut off
    assert get("lrp", {"composite": "alpha2_beta1"}) == 4 and get("lrp", {"composite": "epsilon_gamma_box"}) == 5
    with pytest.raises(ValueError, match="'scorecam'.*channel"):
        get("scorecam")


def test_model_inputs_per_image():
    assert catalog.get("integrated_gradients").model_inputs_per_image({"n_steps": 12}) == 12
    assert catalog.get("meaningful_perturbation").model_inputs_per_image() == 1  # steps run in sequence
    assert catalog.get("lrp").model_inputs_per_image({"composite": "alpha2_beta1"}) == 1
