"""Noisy linear imputation (Rong et al. 2022, "ROAD"): removed pixels are filled from their
neighbours, so that removing pixels does not leave a shape the model can read (the class
information leak of black-pixel removal), plus a little noise.

Each removed pixel's value is the weighted mean of its eight neighbours (weight 1/6 for the four
direct, 1/12 for the four diagonal ones; neighbours outside the image are left out), which for all
removed pixels together is one sparse linear system per image and channel set, solved exactly.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import spsolve

NEIGHBOURS = tuple((dy, dx, 1 / 12 if dy and dx else 1 / 6)
                   for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx)


def impute(image: np.ndarray, removed: np.ndarray, noise: float = 0.01,
           rng: np.random.Generator | None = None) -> np.ndarray:
    """(C, H, W) copy of `image` whose `removed` (H, W) pixels are linearly imputed, plus Gaussian
    noise of standard deviation `noise` on the imputed pixels."""
    c, h, w = image.shape
    if removed.shape != (h, w):
        raise ValueError(f"removed {removed.shape} must be the image's (H, W) = {(h, w)}")
    removed = removed.astype(bool)
    out = image.astype(np.float64).copy()
    unknown = np.flatnonzero(removed)
    if not len(unknown):
        return out.astype(image.dtype)
    if len(unknown) == h * w:
        raise ValueError("every pixel is removed: nothing to impute from")
    variable = np.full(h * w, -1)
    variable[unknown] = np.arange(len(unknown))
    flat = out.reshape(c, h * w)
    ys, xs = np.divmod(unknown, w)
    rows, cols, values = [], [], []
    diagonal = np.zeros(len(unknown))
    rhs = np.zeros((len(unknown), c))
    for dy, dx, weight in NEIGHBOURS:
        ny, nx = ys + dy, xs + dx
        inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        eq = np.flatnonzero(inside)
        neighbour = ny[eq] * w + nx[eq]
        diagonal[eq] += weight
        free = variable[neighbour] >= 0
        rows.append(eq[free])
        cols.append(variable[neighbour[free]])
        values.append(np.full(free.sum(), weight))
        rhs[eq[~free]] -= weight * flat[:, neighbour[~free]].T
    rows.append(np.arange(len(unknown)))
    cols.append(np.arange(len(unknown)))
    values.append(-diagonal)
    system = sparse.csc_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
                               shape=(len(unknown), len(unknown)))
    solved = np.asarray(spsolve(system, rhs)).reshape(len(unknown), c)
    if noise:
        solved = solved + noise * (rng or np.random.default_rng()).standard_normal(solved.shape)
    flat[:, unknown] = solved.T
    return out.astype(image.dtype)


__all__ = ["NEIGHBOURS", "impute"]
