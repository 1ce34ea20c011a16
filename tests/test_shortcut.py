"""The planted shortcut (synthetic options `cue`, `cue_probability`, `cue_size`, `mask`): the mark
is where its mask says, shows the class it should, and changes nothing else of the face."""

import numpy as np
import pytest

from ferxai.data.center_patch import scaled_glyph
from ferxai.data.shortcut import CLASSES, corners, cue_glyphs
from ferxai.data.synthetic import SyntheticConfig, generate, load_mask, render_sample

SIZE, CUE = 48, 6


def config(**options):
    return SyntheticConfig.from_dict({"size": SIZE, "seed": 5, **options})


def decoded(image: np.ndarray, cue_mask: np.ndarray) -> int:
    """The class whose glyph the marked square shows best."""
    square = image[cue_mask].astype(float).reshape(CUE, CUE)
    templates = np.stack([scaled_glyph(g, CUE).astype(float) - 0.5 for g in cue_glyphs()]).reshape(CLASSES, -1)
    return int(np.argmax(templates @ (square.ravel() - square.mean())))


def test_marks_are_fixed_distinct_and_survive_a_horizontal_flip():
    bank = cue_glyphs()
    assert bank.shape == (CLASSES, 4, 4) and np.array_equal(bank, cue_glyphs())
    assert np.array_equal(bank, bank[:, :, ::-1])  # a flipped mark is the same class's mark
    for i in range(CLASSES):
        assert 6 <= bank[i].sum() <= 10
        assert all((bank[i] != bank[j]).sum() >= 4 for j in range(i))


@pytest.mark.parametrize("cue", ["matched", "shuffled"])
def test_the_mark_is_in_a_corner_shows_its_class_and_changes_nothing_else(cue):
    clean = config()
    marked, cue_masks = config(cue=cue), config(cue=cue, mask="cue")
    squares = {(y, x) for y, x in corners(SIZE, CUE)}
    for label in range(CLASSES):
        for index in range(6):
            face, features = render_sample(clean, label, index)
            image, features_marked = render_sample(marked, label, index)
            _, cue_mask = render_sample(cue_masks, label, index)
            rows, cols = np.nonzero(cue_mask)
            assert cue_mask.sum() == CUE * CUE and (rows.min(), cols.min()) in squares
            assert rows.max() - rows.min() == cols.max() - cols.min() == CUE - 1
            np.testing.assert_array_equal(image[~cue_mask], face[~cue_mask])   # the same face elsewhere
            np.testing.assert_array_equal(features_marked, features & ~cue_mask)
            shown = decoded(image, cue_mask)
            assert shown == label if cue == "matched" else shown != label


def test_cue_probability_is_the_share_of_marked_images():
    half = config(cue="matched", cue_probability=0.5, mask="cue")
    marked = [render_sample(half, label, i)[1].any() for label in range(CLASSES) for i in range(40)]
    assert 0.4 < np.mean(marked) < 0.6
    never = config(cue="matched", cue_probability=0.0, mask="cue")
    assert not any(render_sample(never, 0, i)[1].any() for i in range(10))
    # the share does not move the marks that are drawn: an image marked at 0.5 is marked alike at 1
    always = config(cue="matched", cue_probability=1.0)
    for i in range(10):
        image, cue_mask = render_sample(half, 3, i)
        if cue_mask.any():
            np.testing.assert_array_equal(image, render_sample(always, 3, i)[0])


def test_generate_writes_the_cue_masks(tmp_path):
    generate(tmp_path, config(n_per_class=2, cue="matched", mask="cue"))
    mask = load_mask(tmp_path / "masks" / "happy" / "happy_00001.png")
    assert mask.sum() == CUE * CUE
    np.testing.assert_array_equal(mask, render_sample(config(cue="matched", mask="cue"), 3, 1)[1])


@pytest.mark.parametrize("options, message", [
    ({"cue": "always"}, "'cue' must be one of"),
    ({"cue": "matched", "cue_probability": 1.5}, "'cue_probability' must be a number in"),
    ({"cue": "matched", "cue_size": 12}, "'cue_size' must be an integer in"),
    ({"mask": "cue"}, "needs a cue"),
    ({"mask": "everything"}, "'mask' must be"),
    ({"kind": "center_patch", "cue": "matched"}, "kind 'center_patch' has none"),
])
def test_bad_cue_options_name_the_option(options, message):
    with pytest.raises(ValueError, match=message):
        SyntheticConfig.from_dict(options)
