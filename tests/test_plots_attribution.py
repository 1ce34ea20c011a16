import numpy as np
import pytest
from PIL import Image

from ferxai.plots.attribution import (
    image_to_rgb8,
    normalize_attribution,
    overlay,
    plot_gallery,
    plot_method_grid,
    pool_patches,
    runner_results_text,
    safe_name,
    sample_title,
    save_overlay_png,
    upscale,
    write_runner_layout,
)

H = W = 8


def _gray(value=0.5, c=1):
    return np.full((c, H, W), value, np.float32)


def test_overlay_shape_dtype_and_alpha():
    a = np.random.default_rng(0).random((H, W))
    for c in (1, 3):
        rgb = overlay(_gray(c=c), a, signed=False)
        assert rgb.shape == (H, W, 3) and rgb.dtype == np.uint8
    # alpha 0: just the image; uint8 images accepted too
    assert (overlay(np.full((1, H, W), 128, np.uint8), a, signed=False, alpha=0.0) == 128).all()
    with pytest.raises(ValueError, match="does not match"):
        overlay(_gray(), np.zeros((4, 4)), signed=False)


def test_signed_colours_positive_red_negative_blue_zero_neutral():
    a = np.zeros((H, W))
    a[:2] = 1.0
    a[-2:] = -1.0
    rgb = overlay(_gray(0.5), a, signed=True, alpha=1.0).astype(int)
    pos, neg, zero = rgb[0, 0], rgb[-1, 0], rgb[4, 0]
    assert pos[0] > pos[2] + 60 and pos[0] > pos[1] + 60  # red
    assert neg[2] > neg[0] + 60  # blue
    assert abs(zero[0] - zero[2]) < 10 and zero.min() > 200  # white (centre of the diverging map)
    # symmetric: a small positive value is pale red, never blue
    b = a.copy()
    b[4, 0] = 0.2
    v = normalize_attribution(b, signed=True, p_low=0, p_high=100)
    assert v[4, 0] == pytest.approx(0.2) and v[-1, 0] == -1.0 and v[0, 0] == 1.0


def test_unsigned_percentile_clipping_and_gamma():
    a = np.linspace(0, 1, H * W).reshape(H, W)
    a[0, 0] = 1000.0  # an outlier must not squash the rest
    v = normalize_attribution(a, signed=False, p_low=5, p_high=95)
    assert v.min() == 0.0 and v.max() == 1.0
    assert (v == 1.0).sum() >= 3 and (v == 0.0).sum() >= 3  # ~5% each side clipped
    mid = normalize_attribution(a, signed=False, p_low=0, p_high=95)
    assert 0.2 < mid[4, 4] < 0.8  # without the stretch it would be ~0.0005
    g = normalize_attribution(a, signed=False, p_low=5, p_high=95, gamma=0.5)
    inner = (v > 0) & (v < 1)
    assert np.allclose(g[inner], np.sqrt(v[inner]))
    # unsigned maps on a perceptually uniform sequential map: the most relevant pixel brightest,
    # and brightness rising with relevance
    rgb = overlay(_gray(), a, signed=False, alpha=1.0, p_low=5, p_high=95).astype(int)
    brightness = rgb.sum(axis=2).ravel()
    assert brightness[0] == brightness.max() and brightness[1] == brightness.min()
    assert (np.diff(brightness[1:]) >= 0).all()
    # constant map does not divide by zero
    assert np.isfinite(normalize_attribution(np.ones((H, W)), signed=False)).all()
    assert (normalize_attribution(np.zeros((H, W)), signed=True) == 0).all()
    with pytest.raises(ValueError, match="p_low"):
        normalize_attribution(a, signed=False, p_low=50, p_high=50)


def test_patch_pooling():
    a = np.arange(36, dtype=float).reshape(6, 6)
    p = pool_patches(a, 3)
    assert p.shape == a.shape
    assert np.allclose(p[:3, :3], a[:3, :3].mean()) and np.allclose(p[3:, 3:], a[3:, 3:].mean())
    q = pool_patches(np.arange(25, dtype=float).reshape(5, 5), 2)  # ragged edge blocks
    assert q[4, 4] == 24.0 and q[0, 4] == pytest.approx((4 + 9) / 2)
    assert pool_patches(a, None) is not None and np.array_equal(pool_patches(a, 1), a)
    rgb = overlay(np.full((1, 6, 6), 0.5), a, signed=False, patch=3)
    assert (rgb[:3, :3] == rgb[0, 0]).all()


def test_save_overlay_png_upscales(tmp_path):
    rgb = overlay(_gray(), np.random.default_rng(0).random((H, W)), signed=False)
    path = save_overlay_png(tmp_path / "sub" / "o.png", rgb)
    with Image.open(path) as im:
        assert im.size == (4 * W, 4 * H)
        big = np.asarray(im)
    assert np.array_equal(big[::4, ::4], rgb) and np.array_equal(big[3::4, 3::4], rgb)
    with Image.open(save_overlay_png(tmp_path / "one.png", rgb, scale=1)) as im:
        assert im.size == (W, H)


def _tile(drawn, cell):
    """The enlarged picture drawn at `cell` (row, column) of a mosaic."""
    top, left = drawn.where[cell]
    return drawn.rgb[top:top + H * drawn.scale, left:left + W * drawn.scale]


def test_method_grid_and_gallery_layout(tmp_path):
    rng = np.random.default_rng(0)
    maps = {"saliency": rng.random((H, W)), "ig": rng.normal(size=(H, W)), "gradcam": rng.random((H, W))}
    signed = {"saliency": False, "ig": True, "gradcam": False}
    grid = plot_method_grid(_gray(), maps, signed, sample_title("happy", "sad", 0.83), patch=2)
    # the input alone on the first row, then the methods (no families: one row)
    assert sorted(grid.where) == [(0, 0), (1, 1), (1, 2), (1, 3)]
    assert np.array_equal(_tile(grid, (1, 2)), upscale(overlay(_gray(), maps["ig"], True, patch=2), grid.scale))
    assert np.array_equal(_tile(grid, (0, 0)), upscale(image_to_rgb8(_gray()), grid.scale))
    assert {"input", "saliency", "ig (±)", "gradcam", "true happy, predicted sad (0.83)"} <= set(grid.texts)
    # one row per family, each led by its name
    families = {"saliency": "gradient", "ig": "gradient", "gradcam": "cam"}
    wrapped = plot_method_grid(_gray(), maps, signed, "t", families)
    assert sorted(wrapped.where) == [(0, 0), (1, 1), (1, 2), (2, 1)]
    assert np.array_equal(_tile(wrapped, (2, 1)), upscale(overlay(_gray(), maps["gradcam"], False), wrapped.scale))
    assert {"gradient", "cam"} <= set(wrapped.texts)
    with pytest.raises(ValueError, match="signed"):
        plot_method_grid(_gray(), maps, {"ig": True}, "t")
    # text is drawn into the picture: the title band above a tile is not blank
    top, left = wrapped.where[1, 1]
    assert (wrapped.rgb[top - 14:top, left:left + W * wrapped.scale] < 128).any()

    images = rng.random((7, 1, H, W))
    gallery_maps = rng.random((7, H, W))
    gallery = plot_gallery(images, gallery_maps, False, [f"img {i}\nline two" for i in range(7)], ncols=3,
                           suptitle="ig / misclassified")
    assert sorted(gallery.where) == [(r, c) for r in range(3) for c in range(3)][:7]
    assert np.array_equal(_tile(gallery, (2, 0)), upscale(overlay(images[6], gallery_maps[6], False), gallery.scale))
    assert "img 6\nline two" in gallery.texts and "ig / misclassified" in gallery.texts
    assert sorted(plot_gallery(images[:2], rng.random((2, H, W)), True, ["a", "b"], ncols=5).where) == [(0, 0), (0, 1)]
    empty = plot_gallery(images[:0], np.zeros((0, H, W)), True, [], ncols=5)
    assert empty.where == {} and empty.texts == ["no images"]
    with pytest.raises(ValueError, match="one of each"):
        plot_gallery(images, rng.random((6, H, W)), False, ["t"] * 7)
    with Image.open(gallery.save(tmp_path / "gallery.png")) as png:
        assert png.format == "PNG" and (png.height, png.width) == gallery.rgb.shape[:2]


def test_runner_layout(tmp_path):
    rgb = np.zeros((H, W, 3), np.uint8)
    text = runner_results_text("Happy", "sad", {"angry": 0.1, "sad": 0.7, "Happy": 0.2}, image_id="test/happy/0001.png")
    assert "prediction: sad" in text and "confidence: 0.7000" in text
    assert text.index("sad: 0.7000") < text.index("Happy: 0.2000") < text.index("angry: 0.1000")
    path = write_runner_layout(tmp_path, "test/happy/0001.png", "Happy", "integrated_gradients", rgb, text,
                               image_rgb=rgb)
    folder = tmp_path / "test_happy_0001_happy"
    assert path == folder / "images" / "test_happy_0001_integrated_gradients.jpg"
    assert path.is_file() and (folder / "images" / "test_happy_0001.jpg").is_file()
    assert (folder / "results.txt").read_text() == text
    with Image.open(path) as im:
        assert im.format == "JPEG" and im.size == (4 * W, 4 * H)
    write_runner_layout(tmp_path, "test/happy/0001.png", "Happy", "gradcam", rgb, text)
    assert sorted(p.name for p in (folder / "images").iterdir()) == [
        "test_happy_0001.jpg", "test_happy_0001_gradcam.jpg", "test_happy_0001_integrated_gradients.jpg"]
    assert safe_name("a/b c/../d") == "a_b_c_.._d" and safe_name("..") == "_"


def test_one_image_under_every_condition_with_every_methods_map(tmp_path):
    from ferxai.explain.pictures import shown_image, write_condition_grid
    from ferxai.explain.shard_files import save_shard
    from ferxai.plots.attribution import plot_conditions

    rng = np.random.default_rng(0)
    images = {"clean": _gray(), "gaussian-0.2": _gray(0.4)}
    maps = {"saliency": {c: rng.random((H, W)) for c in images}, "broken": {"clean": rng.random((H, W))}}
    drawn = plot_conditions(images, maps, {"saliency": False, "broken": True}, "one image")
    # a column of names, then a column per condition; the input's row, then a row per method
    assert sorted(drawn.where) == [(0, 1), (0, 2), (1, 1), (1, 2), (2, 1)]  # no map where the method failed
    assert {"clean", "gaussian-0.2", "input", "saliency", "broken"} <= set(drawn.texts)
    assert np.array_equal(_tile(drawn, (1, 2)), upscale(overlay(images["gaussian-0.2"], maps["saliency"]["gaussian-0.2"],
                                                                False), drawn.scale))

    # the file writer: the first high-confidence image classified right, corrupted as the jobs do
    ids = ["a", "b", "c"]
    pixels = (rng.random((3, 1, H, W)) * 255).astype(np.uint8)
    inputs = tmp_path / "inputs.npz"
    np.savez(inputs, ids=np.array(ids), images=pixels, labels=np.array([0, 1, 1]), predictions=np.array([1, 1, 1]),
             confidence=np.array([0.9, 0.8, 0.7]), sets=np.array(["high_confidence"] * 3),
             class_names=np.array(["h", "v"]))
    files = {}
    for condition in images:
        for method in ("saliency", "broken"):
            failed = {"failed": "RuntimeError: no layer"} if method == "broken" and condition != "clean" else {}
            files[condition, method] = save_shard(tmp_path / f"{condition}-{method}.npz", rng.random((3, H, W)),
                                                  ids, {"start": 0, "total": 3, "signed": False, **failed}) \
                or tmp_path / f"{condition}-{method}.npz"
    out = tmp_path / "conditions.png"
    write_condition_grid(inputs, files, list(images), ["saliency", "broken"], {"scale": 1}, 0, out)
    with Image.open(out) as png:
        assert png.format == "PNG" and png.height > 3 * H * 3  # the input's row and one per method
    assert shown_image(np.load(inputs)) == 1  # "a" is misclassified
    assert shown_image({"sets": np.array(["low_confidence"]), "labels": np.array([0]),
                        "predictions": np.array([0])}) == 0
