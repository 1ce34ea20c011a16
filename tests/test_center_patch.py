"""The center-patch images (synthetic `kind: center_patch`): the class is in the centre and only there."""

import numpy as np
import pytest

from ferxai.data.center_patch import CLASSES, scaled_glyph, glyphs, render_center_patch
from ferxai.data.synthetic import SyntheticConfig, generate, load_mask, render_sample


def test_glyphs_are_fixed_and_distinct():
    bank = glyphs()
    assert bank.shape == (CLASSES, 4, 4) and np.array_equal(bank, glyphs())
    for i in range(CLASSES):
        assert 6 <= bank[i].sum() <= 10
        for j in range(i):
            assert (bank[i] != bank[j]).sum() >= 4


def test_the_mask_is_the_centre_square_and_the_centre_shows_the_class():
    config = SyntheticConfig.from_dict({"kind": "center_patch", "size": 48, "patch_size": 8, "seed": 3})
    templates = np.stack([scaled_glyph(g, 8).astype(float) - 0.5 for g in glyphs()]).reshape(CLASSES, -1)
    hits = 0
    for label in range(CLASSES):
        for index in range(10):
            image, mask = render_sample(config, label, index)
            assert image.shape == (48, 48) and image.dtype == np.uint8
            assert mask.sum() == 64 and mask[20:28, 20:28].all()
            centre = image[20:28, 20:28].astype(float).ravel()
            hits += int(np.argmax(templates @ (centre - centre.mean())) == label)
    # matching the centre against the seven glyphs recovers the class
    assert hits == CLASSES * 10


def test_distractor_glyphs_stay_off_the_centre():
    rng = np.random.default_rng(0)
    for _ in range(20):
        quiet = render_center_patch(rng, 0, size=48, patch=8, nuisance=0.0, noise_sigma=0.0)[0].astype(int)
        # no texture or noise at nuisance 0: every change from the background is a glyph; around the
        # centre square (a patch-wide ring) there is none
        ring = np.zeros((48, 48), bool)
        ring[12:36, 12:36] = True
        ring[20:28, 20:28] = False
        assert np.all(quiet[ring] == 128)


def test_same_config_same_images_and_classes_differ_only_where_the_mask_is():
    config = SyntheticConfig.from_dict({"kind": "center_patch", "seed": 1})
    a, _ = render_sample(config, 2, 5)
    b, _ = render_sample(config, 2, 5)
    assert np.array_equal(a, b)
    rng_a, rng_b = np.random.default_rng(9), np.random.default_rng(9)
    one, mask = render_center_patch(rng_a, 1)
    other, _ = render_center_patch(rng_b, 4)
    assert np.any(one[mask] != other[mask]) and np.array_equal(one[~mask], other[~mask])


def test_generate_writes_masks_the_pipeline_reads(tmp_path):
    generate(tmp_path, {"kind": "center_patch", "n_per_class": 2, "size": 36, "patch_size": 6})
    mask = load_mask(tmp_path / "masks" / "happy" / "happy_00001.png")
    assert mask.sum() == 36 and mask[15:21, 15:21].all()


@pytest.mark.parametrize("options,match", [
    ({"kind": "centre"}, "'kind' must be one of"),
    ({"kind": "center_patch", "patch_size": 3}, "'patch_size' must be an integer in \\[4, 16\\]"),
    ({"kind": "center_patch", "patch_size": 17}, "patch_size"),
])
def test_bad_options_name_the_option(options, match):
    with pytest.raises(ValueError, match=match):
        SyntheticConfig.from_dict(options)
