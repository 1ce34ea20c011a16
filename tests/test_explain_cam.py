"""CAM family (ferxai's own, on torch): tiny fer_cnn, resnet18 and ViT models, every method
checked against pytorch-grad-cam (grad-cam 1.5.7, the test extra's reference)."""

import numpy as np
import pytest
import torch
import torch.nn as nn

pytest.importorskip("pytorch_grad_cam")

import pytorch_grad_cam  # noqa: E402
from pytorch_grad_cam.utils.model_targets import (  # noqa: E402
    ClassifierOutputSoftmaxTarget,
    ClassifierOutputTarget,
)
from pytorch_grad_cam.utils.reshape_transforms import vit_reshape_transform  # noqa: E402

from ferxai.explain import (  # noqa: E402
    ExplainerConfigError,
    UnsupportedModelError,
    get_method,
    make_explainer,
)
from ferxai.explain.methods._cam import AUG_SMOOTH_PASSES  # noqa: E402
from ferxai.models.zoo import build_model  # noqa: E402

from conftest import modules_loaded_explaining  # noqa: E402

CAMS = ["gradcam", "hirescam", "gradcam_elementwise", "gradcam_plusplus", "xgradcam", "ablationcam",
        "scorecam", "eigencam", "eigengradcam", "layercam", "fullgrad"]
GRADIENT_CAMS = ["gradcam", "hirescam", "gradcam_elementwise", "gradcam_plusplus", "xgradcam",
                 "eigengradcam", "layercam"]
TARGETS = torch.tensor([0, 3, 6])


@pytest.fixture(scope="module")
def fer():
    torch.manual_seed(0)
    model = build_model("fer_cnn", 7, 1, 16, widths=[4, 8, 8]).eval()
    return model, torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    model = build_model("resnet18", 7, 1, 32).eval()  # small stem: layer4 is 4x4
    return model, torch.rand(3, 1, 32, 32, generator=torch.Generator().manual_seed(2))


@pytest.fixture(scope="module")
def vit():
    torch.manual_seed(0)
    model = build_model("vit_small", 7, 1, 32, num_layers=1, hidden_dim=24, mlp_dim=48,
                        num_heads=2, patch_size=8).eval()
    # torchvision zero-initialises the head, which makes every gradient (and score) zero.
    nn.init.normal_(model.heads.head.weight, std=0.5)
    return model, torch.rand(3, 1, 32, 32, generator=torch.Generator().manual_seed(3))


def _check(maps, x):
    assert maps.shape == (x.shape[0], x.shape[2], x.shape[3])
    assert maps.dtype == torch.float32 and maps.device == x.device
    assert torch.isfinite(maps).all()
    assert maps.min() >= 0 and maps.max() <= 1 + 1e-6


def test_registry_classes():
    for name in CAMS:
        cls = get_method(name)
        assert (cls.name, cls.family, cls.library, cls.signed) == (name, "cam", None, False)
    assert "target_layer" not in get_method("fullgrad").defaults


@pytest.mark.parametrize("name", CAMS)
def test_fer_cnn_all_methods(fer, name):
    model, x = fer
    e = make_explainer(name, model, arch="fer_cnn", batch_size=4)
    maps = e.attribute(x, TARGETS)
    _check(maps, x)
    assert maps.amax(dim=(1, 2)).gt(0.99).all()  # per-image min-max normalisation
    assert torch.equal(maps, e.attribute(x, TARGETS))  # deterministic
    # pytorch-grad-cam hooks only live during a call
    assert not any(m._forward_hooks for m in model.modules())
    assert all(p.requires_grad and p.grad is None for p in model.parameters())


@pytest.mark.parametrize("name", GRADIENT_CAMS + ["ablationcam", "scorecam", "eigencam"])
def test_vit_methods(vit, name):
    model, x = vit
    e = make_explainer(name, model, arch="vit_small", batch_size=8)
    assert e._layer_path == "encoder.layers.encoder_layer_0.ln_1"  # default read off the model
    maps = e.attribute(x, TARGETS)
    _check(maps, x)
    assert maps.amax(dim=(1, 2)).gt(0.99).all()


LIBRARY = {"gradcam": "GradCAM", "hirescam": "HiResCAM", "gradcam_elementwise": "GradCAMElementWise",
           "gradcam_plusplus": "GradCAMPlusPlus", "xgradcam": "XGradCAM", "ablationcam": "AblationCAM",
           "scorecam": "ScoreCAM", "eigencam": "EigenCAM", "eigengradcam": "EigenGradCAM",
           "layercam": "LayerCAM", "fullgrad": "FullGrad"}


def _signed_library_projection(monkeypatch):
    """The library's projections with its own sign correction (ours is machine-independent; the
    plain SVD's sign is not), in every module that imported get_2d_projection."""
    import importlib

    from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection_with_sign_correction
    for name in ("base_cam", "eigen_cam", "eigen_grad_cam", "layer_cam", "hirescam",
                 "grad_cam_elementwise", "fullgrad_cam"):
        module = importlib.import_module(f"pytorch_grad_cam.{name}")
        monkeypatch.setattr(module, "get_2d_projection", get_2d_projection_with_sign_correction)


def _library_maps(name, model, layer, x, targets, options, output="logits"):
    cls = getattr(pytorch_grad_cam, LIBRARY[name])
    cam = cls(model, [] if name == "fullgrad" else [layer])
    if name == "scorecam":
        cam.batch_size = 64
    target = ClassifierOutputSoftmaxTarget if output == "softmax" else ClassifierOutputTarget
    try:
        return torch.from_numpy(cam(input_tensor=x.clone().requires_grad_(name == "fullgrad"),
                                    targets=[target(int(t)) for t in targets], **options))
    finally:
        cam.activations_and_grads.release()


OPTIONS = {"plain": {}, "aug_smooth": {"aug_smooth": True}, "eigen_smooth": {"eigen_smooth": True}}
# Every method x model x option, except: eigen_smooth on the Eigen CAMs (already a projection, it
# changes nothing), and the options on ResNet for the per-channel CAMs (one pass per channel of
# layer4's 512, which the library makes one image at a time; the option code is fer_cnn's).
LIBRARY_CASES = [(name, which, option) for name in CAMS for which in ("fer", "resnet") for option in OPTIONS
                 if not (option == "eigen_smooth" and name in ("eigencam", "eigengradcam"))
                 and not (which == "resnet" and name in ("ablationcam", "scorecam") and option != "plain")]


@pytest.mark.parametrize(("name", "which", "option"), LIBRARY_CASES)
def test_every_cam_equals_the_library(name, which, option, request, monkeypatch, capfd):
    options = OPTIONS[option]
    _signed_library_projection(monkeypatch)
    model, x = request.getfixturevalue(which)
    targets = TARGETS
    if which == "resnet" and name in ("ablationcam", "scorecam"):
        x, targets = x[:1], TARGETS[:1]
    arch = "fer_cnn" if which == "fer" else "resnet18"
    e = make_explainer(name, model, arch=arch, batch_size=64, **options)
    ours = e.attribute(x, targets)
    _check(ours, x)
    theirs = _library_maps(name, model, e._layer, x, targets, options)
    capfd.readouterr()
    # eigen_smooth: the library projects in float32 with a full SVD, we in float64 (subspace
    # iteration); flat maps amplify that difference after normalisation
    torch.testing.assert_close(ours, theirs, rtol=0, atol=2e-3 if options.get("eigen_smooth") else 1e-4)


def test_probabilities_and_vit_tokens_equal_the_library(resnet, vit):
    model, x = resnet
    # probabilities: our SoftmaxOutput wrapper == the library's softmax target on logits
    ours = make_explainer("gradcam", model, arch="resnet18", output="softmax").attribute(x, TARGETS)
    theirs = _library_maps("gradcam", model, model.layer4, x, TARGETS, {}, output="softmax")
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)
    # ViT: our token reshape == the library's vit_reshape_transform on a 4x4 grid
    vmodel, vx = vit
    layer = vmodel.get_submodule("encoder.layers.encoder_layer_0.ln_1")
    for name in ("gradcam", "scorecam", "layercam"):
        ours = make_explainer(name, vmodel, arch="vit_small").attribute(vx, TARGETS)
        cam = getattr(pytorch_grad_cam, LIBRARY[name])(
            vmodel, [layer], reshape_transform=lambda t: vit_reshape_transform(t, 4, 4))
        theirs = cam(input_tensor=vx, targets=[ClassifierOutputTarget(int(t)) for t in TARGETS])
        cam.activations_and_grads.release()
        torch.testing.assert_close(ours, torch.from_numpy(theirs), rtol=0, atol=1e-5)


def test_cams_do_not_import_the_library():
    """The CAM jobs must not pay for pytorch-grad-cam's imports (torchvision, scikit-learn, cv2)."""
    loaded = modules_loaded_explaining({name: {} for name in CAMS},
                                       ("pytorch_grad_cam", "cv2", "sklearn", "torchvision", "ttach"))
    assert loaded == []


@pytest.mark.parametrize("name", ["gradcam", "gradcam_plusplus", "eigencam", "fullgrad"])
def test_resnet18_batch_equals_single(resnet, name):
    model, x = resnet
    e = make_explainer(name, model, arch="resnet18")
    batch = e.attribute(x, TARGETS)
    _check(batch, x)
    single = torch.cat([e.attribute(x[i:i + 1], TARGETS[i:i + 1]) for i in range(3)])
    torch.testing.assert_close(batch, single, rtol=0, atol=1e-4)


def test_ablation_batch_size_does_not_change_maps(fer, capfd):
    model, x = fer
    a = make_explainer("ablationcam", model, arch="fer_cnn", batch_size=1).attribute(x, TARGETS)
    b = make_explainer("ablationcam", model, arch="fer_cnn", batch_size=16).attribute(x, TARGETS)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    s1 = make_explainer("scorecam", model, arch="fer_cnn", batch_size=3).attribute(x, TARGETS)
    s2 = make_explainer("scorecam", model, arch="fer_cnn", batch_size=16).attribute(x, TARGETS)
    torch.testing.assert_close(s1, s2, rtol=0, atol=1e-5)
    assert capfd.readouterr().err == ""  # no per-image progress bars in workflow logs


def test_no_hooks_outlive_a_failed_call(fer, monkeypatch):
    model, x = fer
    e = make_explainer("ablationcam", model, arch="fer_cnn")
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) > 1:  # the recording pass succeeds, the first ablated batch fails
            raise RuntimeError("boom")
        return model(*args, **kwargs)

    monkeypatch.setattr(e, "forward_model", failing)
    with pytest.raises(RuntimeError, match="boom"):
        e.attribute(x, TARGETS)
    assert not any(m._forward_hooks for m in model.modules())
    monkeypatch.undo()
    _check(e.attribute(x, TARGETS), x)


def test_passes_per_image(fer, vit):
    model, _ = fer
    assert make_explainer("gradcam", model, arch="fer_cnn").passes_per_image() == 1
    assert make_explainer("gradcam", model, arch="fer_cnn", aug_smooth=True).passes_per_image() == AUG_SMOOTH_PASSES
    assert make_explainer("eigencam", model, arch="fer_cnn").passes_per_image() == 1
    assert make_explainer("fullgrad", model, arch="fer_cnn").passes_per_image() == 1
    assert make_explainer("ablationcam", model, arch="fer_cnn").passes_per_image() == 8 + 1
    assert make_explainer("scorecam", model, arch="fer_cnn").passes_per_image() == 8 + 1
    assert make_explainer("scorecam", vit[0], arch="vit_small").passes_per_image() == 24 + 1
    counted = []
    e = make_explainer("gradcam", model, arch="fer_cnn", aug_smooth=True)
    handle = model.register_forward_hook(lambda *_: counted.append(1))
    try:
        e.attribute(torch.rand(2, 1, 16, 16), torch.tensor([0, 1]))
    finally:
        handle.remove()
    assert len(counted) == AUG_SMOOTH_PASSES


@pytest.mark.parametrize("name", ["gradcam", "eigencam", "fullgrad", "scorecam"])
def test_smoothing_options_run(fer, name):
    model, x = fer
    for opts in ({"aug_smooth": True}, {"eigen_smooth": True}):
        _check(make_explainer(name, model, arch="fer_cnn", **opts).attribute(x, TARGETS), x)


def test_no_grad_caller_and_frozen_model(fer):
    model, x = fer
    e = make_explainer("gradcam", model, arch="fer_cnn")
    ref = e.attribute(x, TARGETS)
    with torch.no_grad():
        torch.testing.assert_close(e.attribute(x, TARGETS), ref)
    model.requires_grad_(False)
    try:
        torch.testing.assert_close(e.attribute(x, TARGETS), ref)
    finally:
        model.requires_grad_(True)


def test_target_layer_errors(fer, vit):
    model, x = fer
    with pytest.raises(ExplainerConfigError, match=r"features\.block9\.relu2.*features\.block\d\.relu2"):
        make_explainer("gradcam", model, arch="fer_cnn", target_layer="features.block9.relu2")
    with pytest.raises(ExplainerConfigError, match="no default target layer"):
        make_explainer("gradcam", model, arch="my_net")
    e = make_explainer("gradcam", model, arch="my_net", target_layer="features.block2")
    _check(e.attribute(x, TARGETS), x)
    e = make_explainer("gradcam", model, arch="fer_cnn", target_layer="classifier")
    with pytest.raises(ExplainerConfigError, match="'classifier' outputs shape"):
        e.attribute(x, TARGETS)
    with pytest.raises(ExplainerConfigError, match="unknown parameter"):
        make_explainer("fullgrad", model, arch="fer_cnn", target_layer="features")
    with pytest.raises(ExplainerConfigError, match="aug_smooth"):
        make_explainer("gradcam", model, arch="fer_cnn", aug_smooth="yes")


def test_fullgrad_unsupported(vit):
    with pytest.raises(UnsupportedModelError, match="vit_small.*transformer"):
        make_explainer("fullgrad", vit[0], arch="vit_small")
    group_norm = nn.Sequential(nn.Conv2d(1, 4, 3), nn.GroupNorm(2, 4), nn.ReLU(),
                               nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(UnsupportedModelError, match=r"1 \(GroupNorm\)"):
        make_explainer("fullgrad", group_norm, arch="gn_net")
    no_bias = nn.Sequential(nn.Conv2d(1, 4, 3, bias=False), nn.ReLU(),
                            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(UnsupportedModelError, match="no Conv2d/BatchNorm2d layer with a bias"):
        make_explainer("fullgrad", no_bias, arch="plain")


def test_eigen_projection_sign_and_small_gram_branch():
    from ferxai.explain.methods._eigen import first_component_projection

    rng = torch.Generator().manual_seed(0)
    for shape in [(3, 16, 5, 5), (3, 64, 2, 3)]:  # channels < pixels, and pixels < channels
        a = torch.rand(shape, generator=rng).numpy()
        ours = first_component_projection(a)
        assert ours.shape == (shape[0], shape[2], shape[3])
        assert (np.abs(ours.min(axis=(1, 2))) <= np.abs(ours.max(axis=(1, 2)))).all()
        for i in range(shape[0]):
            m = a[i].reshape(shape[1], -1).T
            m = m - m.mean(0)
            v = np.linalg.svd(m.astype(np.float64))[2][0]
            ref = (m @ v).reshape(shape[2:])
            ref = -ref if abs(ref.min()) > abs(ref.max()) else ref
            np.testing.assert_allclose(ours[i], ref, atol=1e-4)


def test_top_eigenpairs_subspace_iteration_and_eigh_fallback(monkeypatch):
    """The fast path agrees with eigh; images it cannot settle in its rounds (a flat top of the
    spectrum wider than the block, an all-zero Gram) go to eigh, and only those."""
    from ferxai.explain.methods import _eigen

    rng = torch.Generator().manual_seed(1)
    k = 40
    q = torch.linalg.qr(torch.randn(4, k, k, generator=rng, dtype=torch.float64)).Q
    spectra = 0.5 ** torch.arange(k, dtype=torch.float64).repeat(4, 1)  # clear gaps
    spectra[1, 1] = 0.99999  # close top pair, but both inside the block: converges
    spectra[2, :20] = 1 - 1e-3 * torch.arange(20)  # flat top beyond the block: needs eigh
    grams = q @ torch.diag_embed(spectra) @ q.transpose(1, 2)
    grams[3] = 0
    seen: list[int] = []
    eigh = torch.linalg.eigh
    monkeypatch.setattr(torch.linalg, "eigh", lambda a: seen.append(a.shape[0] if a.shape[-1] == k else -1) or eigh(a))
    value, vector = _eigen.top_eigenpairs(grams)
    assert seen.count(2) == 1 and all(s in (-1, 2) for s in seen)  # images 2 and 3, one call
    ref = eigh(grams)
    torch.testing.assert_close(value, ref.eigenvalues[:, -1])
    cosine = (vector * ref.eigenvectors[..., -1]).sum(dim=1).abs()
    torch.testing.assert_close(cosine[:3], torch.ones(3, dtype=torch.float64), rtol=0, atol=1e-10)
    assert value[3] == 0
    torch.testing.assert_close(torch.linalg.vector_norm(vector, dim=1), torch.ones(4, dtype=torch.float64))


def test_a_target_layer_the_forward_pass_skips_is_named(fer):
    model, x = fer
    class WithSpareLayer(nn.Module):
        def __init__(self):
            super().__init__()
            self.net, self.spare = model, nn.Conv2d(1, 2, 3)

        def forward(self, inputs):
            return self.net(inputs)

    unused = WithSpareLayer()
    for name in ("gradcam", "eigencam"):
        e = make_explainer(name, unused, arch="my_net", target_layer="spare")
        e._layer_shape = (1, 2, 4, 4)  # skip the probe, so the call itself meets the unused layer
        with pytest.raises(ExplainerConfigError, match="'spare' is not used in the forward pass"):
            e.attribute(x, TARGETS)
