"""SHAP (ferxai's own Partition explainer) against the shap library it replaces: same maps for
every masker, output and image shape; the tree it walks; and a process that explains with it
loads neither shap nor numba."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ferxai.explain.methods.shap import ALGORITHM_BATCH, partition_tree
from ferxai.explain.registry import make_explainer
from ferxai.models import build_model

from conftest import modules_loaded_explaining

shap = pytest.importorskip("shap")  # the reference: in the `test` extra only


def shap_library_maps(model: torch.nn.Module, x: torch.Tensor, targets: torch.Tensor, masker: str,
                      max_evals: int, seed: int, output: str) -> torch.Tensor:
    """The maps of shap 0.51's own Partition explainer with an image masker, one image per call,
    ties in its queue drawn from NumPy's global state seeded with `seed` for every image."""
    n, c, h, w = x.shape

    @torch.no_grad()
    def f(batch: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(np.ascontiguousarray(batch)).float().permute(0, 3, 1, 2) / 255.0
        out = model(t)
        return (out.softmax(dim=1) if output == "softmax" else out).float().numpy()

    if masker == "black":
        image_masker = shap.maskers.Image(np.zeros((h, w, c), dtype=np.float32))
    else:
        image_masker = shap.maskers.Image(masker, (h, w, c))
    explainer = shap.Explainer(f, image_masker, algorithm="partition")
    images = x.permute(0, 2, 3, 1).numpy() * 255.0
    maps = []
    for i, target in enumerate(targets.tolist()):
        image_masker.last_xid = None  # its blur cache is keyed on id() of a temporary array
        state = np.random.get_state()
        try:
            np.random.seed(seed)
            result = explainer(images[i:i + 1], max_evals=max_evals, batch_size=ALGORITHM_BATCH - 1,
                               outputs=np.array([target]), silent=True)
        finally:
            np.random.set_state(state)
        maps.append(torch.from_numpy(np.asarray(result.values)[0, ..., 0].sum(axis=-1).astype(np.float32)))
    return torch.stack(maps)


@pytest.fixture(scope="module")
def gray():
    torch.manual_seed(0)
    model = build_model("fer_cnn", num_classes=3, in_channels=1, input_size=16, widths=[4, 8, 8]).eval()
    x = torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    return model, x, torch.tensor([0, 1, 2])


@pytest.fixture(scope="module")
def colour():
    """Three channels and a non-square image: the tree splits rows, columns and channels."""
    torch.manual_seed(0)
    model = build_model("fer_cnn", num_classes=4, in_channels=3, input_size=16, widths=[4, 8, 8]).eval()
    x = torch.rand(2, 3, 12, 20, generator=torch.Generator().manual_seed(2))
    return model, x, torch.tensor([3, 0])


@pytest.mark.parametrize("masker, max_evals, output", [
    ("blur(4,4)", 80, "logits"),
    ("blur(8,8)", 300, "softmax"),
    ("black", 120, "logits"),
    ("inpaint_telea", 60, "logits"),
    ("inpaint_ns", 60, "softmax"),
])
@pytest.mark.parametrize("data", ["gray", "colour"])
def test_maps_equal_the_shap_library(request, data, masker, max_evals, output):
    model, x, t = request.getfixturevalue(data)
    ours = make_explainer("shap", model, output=output, batch_size=16, masker=masker, max_evals=max_evals,
                          seed=3).attribute(x, t)
    reference = shap_library_maps(model, x, t, masker, max_evals, seed=3, output=output)
    assert reference.abs().max() > 0
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-6)


def test_the_whole_budget_reaches_every_feature_and_sums_to_the_output_change(gray):
    """With evaluations to spare the recursion ends at single pixels, and Owen values are
    efficient: they add up to f(image) - f(everything hidden)."""
    model, x, t = gray
    e = make_explainer("shap", model, batch_size=64, masker="black", max_evals=3000)
    maps = e.attribute(x[:1], t[:1])
    with torch.no_grad():
        change = model(x[:1])[0, 0] - model(torch.zeros_like(x[:1]))[0, 0]
    torch.testing.assert_close(maps.sum(), change, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(maps, shap_library_maps(model, x[:1], t[:1], "black", 3000, 0, "logits"),
                               rtol=1e-5, atol=1e-6)


def test_partition_tree_halves_the_longest_side_and_numbers_like_shap():
    tree = partition_tree((4, 6, 2))
    m = 4 * 6 * 2
    assert tree.features == m and tree.sizes[2 * m - 2] == m
    # the root's first cut halves the 6 columns; every split covers its two children exactly
    left, right = tree.children[m - 2]
    assert tuple(tree.boxes[left]) == (0, 4, 0, 3, 0, 2) and tuple(tree.boxes[right]) == (0, 4, 3, 6, 0, 2)
    for split in range(m, 2 * m - 1):
        a, b = tree.children[split - m]
        assert a < split and b < split
        assert (tree.mask(a) ^ tree.mask(b)).sum() == tree.sizes[split]
        assert not (tree.mask(a) & tree.mask(b)).any()
    # shap's masker builds the same numbering (its clustering rows: left, right, -, size)
    clustering = shap.maskers.Image("blur(2,2)", (4, 6, 2)).clustering
    np.testing.assert_array_equal(clustering[:, :2].astype(int), tree.children)
    np.testing.assert_array_equal(clustering[:, 3], tree.sizes[m:])


def test_a_process_explaining_with_shap_loads_neither_shap_nor_numba():
    assert modules_loaded_explaining({"shap": {"max_evals": 40}}, ("shap", "numba", "sklearn", "pandas")) == []
