"""The center-patch images: a known-answer test for explanations (the synthetic dataset's
`kind: center_patch`).

The class is decided by one small glyph in the exact centre of the image and nothing else: a
`patch` x `patch` square showing the class's pattern (one of seven fixed 4 x 4 binary patterns,
scaled up). Everything else is distractor: a smooth random texture, pixel noise, and glyphs of
randomly drawn classes at random places off the centre, so a model that is right must read the
centre, and a map that is right must put its relevance there. The mask is the centre square.
"""

from __future__ import annotations

import numpy as np

GLYPH_CELLS = 4  # a glyph is a 4 x 4 pattern of on/off cells
CLASSES = 7
DISTRACTORS = 4  # off-centre glyphs of random classes per image
_CONTRAST = 70.0  # gray levels between a glyph's on and off cells


def glyphs() -> np.ndarray:
    """(7, 4, 4) bool: the classes' patterns, fixed (not seeded), each with 6 to 10 cells on and
    every pair differing in at least 4 cells."""
    rng = np.random.default_rng(20261202)
    chosen: list[np.ndarray] = []
    while len(chosen) < CLASSES:
        candidate = rng.uniform(size=(GLYPH_CELLS, GLYPH_CELLS)) < 0.5
        if 6 <= candidate.sum() <= 10 and all((candidate != c).sum() >= 4 for c in chosen):
            chosen.append(candidate)
    return np.stack(chosen)


def scaled_glyph(glyph: np.ndarray, patch: int) -> np.ndarray:
    index = np.arange(patch) * GLYPH_CELLS // patch
    return glyph[np.ix_(index, index)]


def render_center_patch(rng: np.random.Generator, label: int, size: int = 48, patch: int = 8,
                        nuisance: float = 1.0, noise_sigma: float = 8.0) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 image H x W, bool mask of the centre patch) of class index `label`."""
    if not 0 <= label < CLASSES:
        raise ValueError(f"label must be in [0, {CLASSES}), got {label}")
    if not 4 <= patch <= size // 3:
        raise ValueError(f"patch must be in [4, {size // 3}] for images of {size} px, got {patch}")
    from scipy import ndimage

    n = float(nuisance)
    bank = glyphs()
    texture = ndimage.gaussian_filter(rng.standard_normal((size, size)), sigma=size / 12, mode="wrap")
    texture = texture / (texture.std() or 1.0)
    img = 128.0 + 20.0 * n * texture
    lo = (size - patch) // 2
    mask = np.zeros((size, size), dtype=bool)
    mask[lo:lo + patch, lo:lo + patch] = True
    # distractor glyphs anywhere their square keeps a patch-wide margin from the centre square
    placed = 0
    while placed < DISTRACTORS:
        y, x = rng.integers(0, size - patch + 1, 2)
        if abs(int(y) - lo) < 2 * patch and abs(int(x) - lo) < 2 * patch:
            continue
        other = int(rng.integers(0, CLASSES))
        img[y:y + patch, x:x + patch] += _CONTRAST * (scaled_glyph(bank[other], patch) - 0.5)
        placed += 1
    img[lo:lo + patch, lo:lo + patch] += _CONTRAST * (scaled_glyph(bank[label], patch) - 0.5)
    img = img + noise_sigma * n * rng.standard_normal((size, size))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), mask


__all__ = ["CLASSES", "glyphs", "render_center_patch", "scaled_glyph"]
