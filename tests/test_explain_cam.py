"""CAM family (pytorch-grad-cam behind ferxai's Explainer): tiny fer_cnn, resnet18 and ViT models."""

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
        # library: the pip distribution (pytorch_grad_cam is distributed as grad-cam)
        assert (cls.name, cls.family, cls.library, cls.signed) == (name, "cam", "grad-cam", False)
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


def test_gradcam_equals_library(resnet, vit):
    model, x = resnet
    ours = make_explainer("gradcam", model, arch="resnet18").attribute(x, TARGETS)
    theirs = pytorch_grad_cam.GradCAM(model, [model.layer4])(
        input_tensor=x, targets=[ClassifierOutputTarget(int(t)) for t in TARGETS])
    torch.testing.assert_close(ours, torch.from_numpy(theirs), rtol=0, atol=1e-5)
    # probabilities: our SoftmaxOutput wrapper == the library's softmax target on logits
    ours = make_explainer("gradcam", model, arch="resnet18", output="softmax").attribute(x, TARGETS)
    theirs = pytorch_grad_cam.GradCAM(model, [model.layer4])(
        input_tensor=x, targets=[ClassifierOutputSoftmaxTarget(int(t)) for t in TARGETS])
    torch.testing.assert_close(ours, torch.from_numpy(theirs), rtol=0, atol=1e-5)
    # ViT: our token reshape == the library's vit_reshape_transform on a 4x4 grid
    vmodel, vx = vit
    layer = vmodel.get_submodule("encoder.layers.encoder_layer_0.ln_1")
    ours = make_explainer("gradcam", vmodel, arch="vit_small").attribute(vx, TARGETS)
    theirs = pytorch_grad_cam.GradCAM(
        vmodel, [layer], reshape_transform=lambda t: vit_reshape_transform(t, 4, 4))(
        input_tensor=vx, targets=[ClassifierOutputTarget(int(t)) for t in TARGETS])
    torch.testing.assert_close(ours, torch.from_numpy(theirs), rtol=0, atol=1e-5)


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
    assert capfd.readouterr().err == ""  # the library's per-image progress bars are off


def test_ablation_restores_layer_after_error(fer, monkeypatch):
    model, x = fer
    layer = model.get_submodule("features.block3.relu2")

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(pytorch_grad_cam.AblationLayer, "set_next_batch", boom)
    with pytest.raises(RuntimeError, match="boom"):
        make_explainer("ablationcam", model, arch="fer_cnn").attribute(x, TARGETS)
    assert model.get_submodule("features.block3.relu2") is layer
    assert not any(m._forward_hooks for m in model.modules())


def test_passes_per_image(fer, vit):
    model, _ = fer
    assert make_explainer("gradcam", model, arch="fer_cnn").passes_per_image() == 1
    assert make_explainer("gradcam", model, arch="fer_cnn", aug_smooth=True).passes_per_image() == AUG_SMOOTH_PASSES
    assert make_explainer("eigencam", model, arch="fer_cnn").passes_per_image() == 1
    assert make_explainer("fullgrad", model, arch="fer_cnn").passes_per_image() == 1
    assert make_explainer("ablationcam", model, arch="fer_cnn").passes_per_image() == 8 + 2
    assert make_explainer("scorecam", model, arch="fer_cnn").passes_per_image() == 8 + 1
    assert make_explainer("scorecam", vit[0], arch="vit_small").passes_per_image() == 24 + 1
    tta = pytorch_grad_cam.GradCAM(model, [model.features])
    assert len(list(tta.tta_transforms)) == AUG_SMOOTH_PASSES
    tta.activations_and_grads.release()


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


@pytest.mark.parametrize("which", ["fer", "resnet"])
def test_fullgrad_equals_the_library_with_batched_post_processing(which, request):
    model, x = request.getfixturevalue(which)
    arch = "fer_cnn" if which == "fer" else "resnet18"
    ours = make_explainer("fullgrad", model, arch=arch).attribute(x, TARGETS)
    theirs = pytorch_grad_cam.FullGrad(model, [])(
        input_tensor=x.clone(), targets=[ClassifierOutputTarget(int(t)) for t in TARGETS])
    torch.testing.assert_close(ours, torch.from_numpy(theirs), rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["eigencam", "eigengradcam"])
@pytest.mark.parametrize("which", ["fer", "resnet"])
def test_eigen_cams_equal_the_library_with_its_sign_correction(name, which, request, monkeypatch):
    """Our batched projection == the library's classes with the library's own sign-corrected
    per-image SVD projection (our sign is machine-independent; plain get_2d_projection's is not)."""
    from pytorch_grad_cam import eigen_cam, eigen_grad_cam
    from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection_with_sign_correction

    model, x = request.getfixturevalue(which)
    arch = "fer_cnn" if which == "fer" else "resnet18"
    e = make_explainer(name, model, arch=arch)
    ours = e.attribute(x, TARGETS)
    for module in (eigen_cam, eigen_grad_cam):
        monkeypatch.setattr(module, "get_2d_projection", get_2d_projection_with_sign_correction)
    library = {"eigencam": pytorch_grad_cam.EigenCAM, "eigengradcam": pytorch_grad_cam.EigenGradCAM}[name]
    theirs = library(model, [e._layer])(input_tensor=x.clone().requires_grad_(name == "eigengradcam"),
                                        targets=[ClassifierOutputTarget(int(t)) for t in TARGETS])
    torch.testing.assert_close(ours, torch.from_numpy(theirs), rtol=0, atol=1e-4)
    assert ours.amax(dim=(1, 2)).gt(0.99).all()


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
