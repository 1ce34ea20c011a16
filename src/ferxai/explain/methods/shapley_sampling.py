"""Shapley value sampling (Castro et al. 2009) over square patches.

Each of `n_samples` random feature orders adds the patches to the baseline one by one; a patch's
attribution is its mean marginal gain f(with it) - f(without it). This is Captum's
`ShapleyValueSampling` with a patch `feature_mask` (same permutations from the same seed give the
same maps; the tests check it), with two differences in how the work is laid out:

* the all-baseline and the full image are evaluated once per image, not once per permutation
  (Captum re-evaluates the full image at the end of every permutation): 2 + n_samples * (F - 1)
  passes instead of 1 + n_samples * F;
* the prefixes of all permutations of all images form one flat grid evaluated `batch_size` inputs
  at a time, whereas Captum batches at most one permutation (F inputs per image) per forward.
"""

from __future__ import annotations

import torch

from ferxai.explain.baselines import ReferenceBaselines
from ferxai.explain.methods._perturb import PerturbationExplainer, masked_scores, patch_labels


class ShapleySampling(ReferenceBaselines, PerturbationExplainer):
    """Parameters: ``n_samples`` (permutations), ``patch_size`` (px), ``baseline`` ("black" |
    "blur" (``blur_sigma`` px) | "mean" | "class_mean", see ferxai.explain.baselines), ``seed``
    (permutations are drawn by a generator seeded with it, the same for every image and call)."""

    name = "shapley_sampling"

    def permutations(self, n_features: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.params["seed"])
        return torch.stack([torch.randperm(n_features, generator=gen) for _ in range(self.params["n_samples"])])

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        n, _, h, w = inputs.shape
        dev = inputs.device
        labels = patch_labels(h, w, self.params["patch_size"], dev)
        f = int(labels.max()) + 1
        perms = self.permutations(f).to(dev)  # (P, F): perms[p, k] = k-th feature added
        n_perm = len(perms)
        rank = torch.empty_like(perms)
        rank.scatter_(1, perms, torch.arange(f, device=dev).expand(n_perm, -1))  # position of each feature

        # samples: 0 = baseline (no feature), 1 = full image, then prefixes k = 1..F-1 of each permutation
        p_of = torch.zeros(2 + n_perm * (f - 1), dtype=torch.long, device=dev)
        k_of = torch.zeros_like(p_of)
        k_of[1] = f
        inner = torch.arange(n_perm * (f - 1), device=dev)
        if f > 1:
            p_of[2:] = inner // (f - 1)
            k_of[2:] = inner % (f - 1) + 1
        # grid index of prefix k of permutation p, shape (P, F + 1)
        where = torch.empty(n_perm, f + 1, dtype=torch.long, device=dev)
        where[:, 0], where[:, f] = 0, 1
        if f > 1:
            where[:, 1:f] = 2 + inner.view(n_perm, f - 1)

        pixel_rank = rank[:, labels.view(-1)]  # (P, H*W): when each pixel's feature enters

        def mask(i: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
            return (pixel_rank[p_of[s]] < k_of[s][:, None]).view(-1, 1, h, w)

        fill = self._baseline(inputs, targets)
        scores = masked_scores(self.forward_model, inputs, targets, len(p_of), mask, fill, self.batch_size)
        path = scores[:, where]  # (N, P, F + 1)
        gains = path[:, :, 1:] - path[:, :, :-1]  # gain of adding perms[p, k]
        attr = torch.zeros(n, f, dtype=gains.dtype, device=dev)
        attr.scatter_add_(1, perms.reshape(1, -1).expand(n, -1), gains.reshape(n, -1))
        return (attr / n_perm)[:, labels]
