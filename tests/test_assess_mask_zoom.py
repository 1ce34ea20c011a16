"""The mask-zoom figure: the window around a mask, and what each method's cell shows."""

import numpy as np
import pytest

from ferxai.plots.assess import mask_window, plot_mask_zoom


def test_window_is_the_mask_box_grown_by_half_its_side_inside_the_image():
    mask = np.zeros((48, 48), dtype=bool)
    mask[20:28, 20:28] = True                       # the centre patch: 8 px, margin 4
    assert mask_window(mask) == (slice(16, 32), slice(16, 32))
    corner = np.zeros((10, 12), dtype=bool)
    corner[0:2, 9:12] = True                        # 3 px wide box at the corner: margin 2, clipped
    assert mask_window(corner) == (slice(0, 4), slice(7, 12))
    assert mask_window(mask, margin=0) == (slice(20, 28), slice(20, 28))
    with pytest.raises(ValueError, match="non-empty"):
        mask_window(np.zeros((4, 4), dtype=bool))


def test_each_method_has_its_map_and_the_enlarged_window_with_its_note():
    rng = np.random.default_rng(0)
    image = rng.random((1, 24, 24))
    mask = np.zeros((24, 24), dtype=bool)
    mask[10:14, 10:14] = True
    maps = {"inside": mask.astype(float), "signed": rng.standard_normal((24, 24)), "broken": None}
    notes = {"inside": "mass 1.00", "broken": "failed: no such layer"}
    fig = plot_mask_zoom(image, mask, maps, {"inside": False, "signed": True}, notes, "one image", columns=2)
    axes = fig.axes
    assert len(axes) == 2 * (1 + len(maps))         # input + 3 methods, two panels each
    titles = [ax.get_title() for ax in axes[::2]]
    assert titles == ["input", "inside", "signed (±)", "broken"]
    shown = [ax.images[0].get_array().shape[:2] for ax in axes if ax.images]
    assert shown == [(24, 24), (8, 8)] * 3           # the failed method draws nothing
    assert axes[3].get_xlabel() == "mass 1.00" and axes[7].get_xlabel().startswith("failed")
    assert any(t.get_text() == "failed" for t in axes[6].texts)
    # the map equal to the mask: one colour inside the outline of its zoomed panel, another outside
    zoom = axes[3].images[0].get_array().astype(float)
    window = mask[mask_window(mask)]
    assert np.abs(zoom[window].mean(axis=0) - zoom[~window].mean(axis=0)).sum() > 60
