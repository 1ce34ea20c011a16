"""A planted shortcut for the synthetic faces (options `cue`, `cue_probability`, `cue_size`): a
small class-specific mark away from the face's features, so a model can learn the class from the mark instead of
the expression, as real models learn a watermark, a ruler or one class's different resolution.

The mark is the class's glyph (one of seven 4 x 4 patterns, scaled to `cue_size` px) drawn with
strong contrast in one of the four image corners: far from the facial
features (at most the edge of a large or shifted face reaches a corner, and the mark covers it).
The glyphs are mirror-symmetric: training's horizontal flips move a mark to the other corner but
keep its pattern, so the mark stays a consistent cue under the default augmentation (with
asymmetric glyphs a flip turns a class's mark into another pattern, and a model trained with flips
learnt to ignore the marks). `cue: matched` draws the image's own class's glyph; `shuffled`
draws the glyph of another class, drawn at random, so the mark misleads; `none` draws nothing.
Whether an image has a mark, and where, comes from its own generator, separate from the face's:
the faces are byte-identical to those of the same config without a cue, so a model trained on
them (the clean model) sees the very same faces.
"""

from __future__ import annotations

import numpy as np

from ferxai.classes import FER2013_CLASSES

CUES: tuple[str, ...] = ("none", "matched", "shuffled")
CLASSES = len(FER2013_CLASSES)  # one mark per class of the faces
CUE_STREAM = 1  # the cue's generator: default_rng([seed, label, index, CUE_STREAM])
MARGIN = 1      # pixels between a mark and the image border
_CONTRAST = 110.0


def cue_glyphs() -> np.ndarray:
    """(7, 4, 4) bool: the classes' marks, fixed (not seeded), each left-right symmetric with 6 to
    10 cells on and every pair differing in at least 4 cells."""
    rng = np.random.default_rng(20261203)
    chosen: list[np.ndarray] = []
    while len(chosen) < CLASSES:
        half = rng.uniform(size=(4, 2)) < 0.5
        candidate = np.concatenate([half, half[:, ::-1]], axis=1)
        if 6 <= candidate.sum() <= 10 and all((candidate != c).sum() >= 4 for c in chosen):
            chosen.append(candidate)
    return np.stack(chosen)


def corners(size: int, cue_size: int) -> list[tuple[int, int]]:
    """Top-left pixel of each of the four corner squares a mark can occupy."""
    far = size - MARGIN - cue_size
    return [(MARGIN, MARGIN), (MARGIN, far), (far, MARGIN), (far, far)]


def add_cue(rng: np.random.Generator, image: np.ndarray, label: int, cue: str, probability: float,
            cue_size: int) -> tuple[np.ndarray, np.ndarray, int | None]:
    """(image with the mark, bool mask of the mark, the class whose glyph was drawn or None)."""
    from ferxai.data.center_patch import scaled_glyph

    if cue not in CUES:
        raise ValueError(f"cue must be one of {list(CUES)}, got {cue!r}")
    size = image.shape[0]
    # every draw is made whatever the outcome, so `probability` and `cue` decide only what is drawn
    present = rng.uniform() < probability
    corner = int(rng.integers(0, 4))
    other = int(rng.integers(0, CLASSES - 1))
    mask = np.zeros(image.shape, dtype=bool)
    if cue == "none" or not present:
        return image, mask, None
    shown = label if cue == "matched" else other + (other >= label)  # any class but the label
    y, x = corners(size, cue_size)[corner]
    pattern = scaled_glyph(cue_glyphs()[shown], cue_size)
    out = image.astype(np.float64)
    out[y:y + cue_size, x:x + cue_size] = 128.0 + _CONTRAST * (pattern - 0.5) * 2
    mask[y:y + cue_size, x:x + cue_size] = True
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), mask, shown


__all__ = ["CLASSES", "CUES", "CUE_STREAM", "add_cue", "corners", "cue_glyphs"]
