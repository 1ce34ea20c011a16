"""LIME for images (Ribeiro et al. 2016): a weighted linear model over superpixels on/off.

The algorithm is `lime_image.LimeImageExplainer.explain_instance`'s: superpixels, `num_samples`
random on/off vectors (the first all on), hidden superpixels replaced by `hide_color`, distances
= cosine distance of each vector to the all-on vector, weights = sqrt(exp(-d^2 / width^2)), and a
ridge regression (alpha 1, intercept) of the target score on the vectors, as
`lime_base.LimeBase.explain_instance_with_data` fits it with all features kept (scikit-learn's
`Ridge` there; the same weighted least squares in numpy here, so a LIME job imports neither lime
nor scikit-learn: tests/test_explain_perturbation.py compares the maps with lime's). What differs is
how the samples reach the model: lime builds every perturbed image in a Python loop and calls the
classifier ten at a time; here the masks are expanded from the superpixel labels with one gather
per chunk and the samples of all images in a call share `batch_size`-sized model batches.

Segmentation is sized to the image (lime's default quickshift, kernel_size 4 and max_dist 200 for
ImageNet-sized photos, finds 4-5 segments on a 48 px face): SLIC with about (side / 6)^2
superpixels, or quickshift with kernel_size = side / 48 and max_dist = 6 * side / 48 (about
30-80 segments on 48 px faces and photos). Grey images are scaled to 0..100 (Lab lightness) for
both, so the usual compactness (10) applies.
"""

from __future__ import annotations

import numpy as np
import torch

from ferxai.explain.methods._perturb import PerturbationExplainer, masked_scores, segment


def _kernel(d: np.ndarray, kernel_width: float) -> np.ndarray:
    # lime_image's default similarity kernel
    return np.sqrt(np.exp(-(d ** 2) / kernel_width ** 2))


def weighted_ridge(data: np.ndarray, y: np.ndarray, weights: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Coefficients of the ridge regression with an intercept that LIME fits (scikit-learn's
    ``Ridge(alpha).fit(data, y, sample_weight=weights)``): centre on the weighted means, scale the
    rows by the square root of their weight, solve the regularised normal equations."""
    data, y, weights = np.asarray(data, np.float64), np.asarray(y, np.float64), np.asarray(weights, np.float64)
    total = weights.sum()
    root = np.sqrt(weights)[:, None]
    x = (data - weights @ data / total) * root
    t = (y - weights @ y / total) * root[:, 0]
    return np.linalg.solve(x.T @ x + alpha * np.eye(x.shape[1]), x.T @ t)


class Lime(PerturbationExplainer):
    """LIME superpixel weights painted back onto the pixels (signed).

    Parameters: ``segmentation`` ("slic" | "quickshift"), ``n_segments`` (SLIC target count;
    None = round(H * W / 36), 64 at 48 px), ``compactness`` (SLIC), ``kernel_size``,
    ``max_dist`` (None = scaled to the image as above) and ``ratio`` (None = 0.5 for grey, 0.2 for
    colour images) for quickshift,
    ``num_samples``, ``kernel_width``, ``hide_color`` ("mean" = each superpixel's mean colour, as
    lime's default, or "black"), ``seed`` (sampling and quickshift).
    """

    name = "lime"

    def segmentation_settings(self, h: int, w: int) -> dict:
        p, side = self.params, min(h, w)
        return {
            "method": p["segmentation"],
            "n_segments": round(h * w / 36) if p["n_segments"] is None else p["n_segments"],
            "compactness": p["compactness"],
            "kernel_size": max(1.0, side / 48) if p["kernel_size"] is None else p["kernel_size"],
            "max_dist": 6.0 * side / 48 if p["max_dist"] is None else p["max_dist"],
            "ratio": p["ratio"],
            "seed": p["seed"],
        }

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        n, c, h, w = inputs.shape
        p = self.params
        seg, counts = segment(inputs, **self.segmentation_settings(h, w))  # (N, H, W), [K_i]
        k_max, s = max(counts), p["num_samples"]

        # on/off vectors: one RandomState(seed) per image, so an image's samples do not depend on
        # the other images in the call; row 0 is the unperturbed image (as in lime)
        z = np.zeros((n, s, k_max), dtype=np.int64)
        for i, k in enumerate(counts):
            z[i, :, :k] = np.random.RandomState(p["seed"]).randint(0, 2, s * k).reshape(s, k)
            z[i, 0, :k] = 1
        z_t = torch.from_numpy(z).to(device=inputs.device, dtype=inputs.dtype)
        flat_seg = seg.view(n, -1)

        # hidden superpixels take hide_color: each superpixel's mean per channel, or a constant
        if p["hide_color"] == "mean":
            sums = torch.zeros(n, c, k_max, device=inputs.device, dtype=inputs.dtype)
            sums.scatter_add_(2, flat_seg[:, None].expand(-1, c, -1), inputs.reshape(n, c, -1))
            area = torch.zeros(n, k_max, device=inputs.device, dtype=inputs.dtype)
            area.scatter_add_(1, flat_seg, torch.ones_like(flat_seg, dtype=inputs.dtype))
            means = sums / area.clamp_min(1)[:, None]
            fudged = means.gather(2, flat_seg[:, None].expand(-1, c, -1)).view(n, c, h, w)
        else:
            fudged = torch.zeros_like(inputs)

        def mask(i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
            return z_t[i, j].gather(1, flat_seg[i]).view(-1, 1, h, w)

        scores = masked_scores(self.forward_model, inputs, targets, s, mask,
                               lambda i, j: fudged[i], self.batch_size).double().cpu().numpy()

        maps = torch.zeros(n, h, w, dtype=torch.float32)
        seg_cpu = seg.cpu()
        for i, k in enumerate(counts):
            data = z[i, :, :k]
            # cosine distance to the all-on vector (sklearn's, zero rows at distance 1)
            on = data.sum(1)
            distances = 1.0 - np.sqrt(on / k)
            weight = weighted_ridge(data, scores[i], _kernel(distances, p["kernel_width"]))
            maps[i] = torch.from_numpy(weight.astype(np.float32))[seg_cpu[i]]
        return maps.to(inputs.device)
