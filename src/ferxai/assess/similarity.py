"""Agreement between two sets of maps of the same images, per image (maps (N, H, W) -> (N,)).

Used by the randomisation sanity check (original vs randomised model), robustness (clean vs noisy
input) and the known-answer experiments (replicate vs replicate). All compare magnitudes,
as Adebayo et al. (2018) do, since a randomised model may flip a map's sign wholesale.

* rank_correlation: Spearman's rho of |a| and |b| over pixels (average ranks for ties); 1 for the
  same ordering, about 0 for independent maps;
* top_k_iou: intersection over union of the `fraction` highest-|value| pixels of each map (ties at
  the cut broken by pixel index);
* ssim: the structural similarity of |a| and |b|, each scaled to [0, 1] by its own maximum,
  with a Gaussian window (sigma 1.5, Wang et al. 2004's constants): scikit-image's SSIM image
  (``gaussian_weights=True, use_sample_covariance=False``) averaged over the whole map, where
  scikit-image's own mean drops a 5-px border (a fifth of a 48-px map's side).
A map that is constant has no ranking: rank_correlation gives NaN there.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, stats


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.abs(np.asarray(a, dtype=np.float64))
    b = np.abs(np.asarray(b, dtype=np.float64))
    if a.ndim != 3 or a.shape != b.shape:
        raise ValueError(f"maps {a.shape} and {b.shape} must both be (N, H, W)")
    return a, b


def rank_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = _pair(a, b)
    ra = stats.rankdata(a.reshape(len(a), -1), axis=1)
    rb = stats.rankdata(b.reshape(len(b), -1), axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    denominator = np.sqrt((ra ** 2).sum(axis=1) * (rb ** 2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (ra * rb).sum(axis=1) / denominator, np.nan)


def top_k_mask(maps: np.ndarray, fraction: float) -> np.ndarray:
    """(N, H, W) boolean: each map's ceil(fraction * pixels) highest-|value| pixels."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    flat = np.abs(np.asarray(maps, dtype=np.float64)).reshape(len(maps), -1)
    k = int(np.ceil(fraction * flat.shape[1]))
    order = np.argsort(-flat, axis=1, kind="stable")[:, :k]
    chosen = np.zeros(flat.shape, dtype=bool)
    np.put_along_axis(chosen, order, True, axis=1)
    return chosen.reshape(np.shape(maps))


def top_k_iou(a: np.ndarray, b: np.ndarray, fraction: float = 0.1) -> np.ndarray:
    a, b = _pair(a, b)
    ta, tb = top_k_mask(a, fraction), top_k_mask(b, fraction)
    return (ta & tb).sum(axis=(1, 2)) / (ta | tb).sum(axis=(1, 2))


def ssim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = _pair(a, b)

    def scaled(m: np.ndarray) -> np.ndarray:
        peak = m.reshape(len(m), -1).max(axis=1)[:, None, None]
        return np.divide(m, peak, out=np.zeros_like(m), where=peak > 0)

    a, b = scaled(a), scaled(b)
    c1, c2 = 0.01 ** 2, 0.03 ** 2  # K1, K2 with a data range of 1

    def blur(m: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(m, sigma=(0, 1.5, 1.5), truncate=3.5, mode="reflect")

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a ** 2
    var_b = blur(b * b) - mu_b ** 2
    cov = blur(a * b) - mu_a * mu_b
    index = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return index.mean(axis=(1, 2))


__all__ = ["rank_correlation", "ssim", "top_k_iou", "top_k_mask"]
