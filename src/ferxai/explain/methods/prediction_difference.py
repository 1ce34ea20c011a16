"""Prediction difference analysis (Zintgraf et al. 2017), marginal-sampling variant.

For every k x k window the window's pixels are resampled `n_samples` times and the class
probability without the window is estimated as the mean over the samples,
p(c | x without w) = mean_s p(c | x with w replaced by sample s). The window's relevance is the
weight of evidence WE = log2 odds p(c | x) - log2 odds p(c | x without w), and a pixel gets the
mean WE of the windows that contain it (the paper slides the window with stride 1; `stride`
trades that for speed).

Marginal sampling: the replacement of a window is the same window cut from a reference image
drawn at random from `set_reference(images)` (e.g. training images), i.e. a draw from the data's
marginal distribution of those pixels. The paper's main variant, conditional sampling from a
Gaussian fitted to a larger surrounding patch, is not implemented. Without references each sample
is Gaussian noise with the image's own per-channel mean and standard deviation (clipped to
[0, 1]) and a warning is logged once.

The method needs probabilities (log odds), so it always uses softmax(model logits), whatever the
explainer's `output`. Probabilities are clipped to [1e-6, 1 - 1e-6] (instead of the paper's
Laplace correction, which needs the training-set size) so the log odds stay finite.
"""

from __future__ import annotations

import logging

import torch

from ferxai.explain.base import SoftmaxOutput
from ferxai.explain.methods._perturb import PerturbationExplainer, masked_scores, window_masks

log = logging.getLogger(__name__)

EPS = 1e-6


def log2_odds(p: torch.Tensor) -> torch.Tensor:
    p = p.clamp(EPS, 1 - EPS)
    return torch.log2(p) - torch.log2(1 - p)


class PredictionDifference(PerturbationExplainer):
    """Parameters: ``window`` (px), ``stride`` (px, <= window), ``n_samples`` (replacements per
    window), ``seed`` (which references / noise are drawn; the same for every image)."""

    name = "prediction_difference"

    def validate(self) -> None:
        self.reference: torch.Tensor | None = None
        self._warned = False
        self._prob_model = SoftmaxOutput(self.model)

    def set_reference(self, images: torch.Tensor | None = None, *, mean_image: torch.Tensor | None = None,
                      class_means: torch.Tensor | None = None) -> "PredictionDifference":
        """Images (M, C, H, W) in [0, 1] (e.g. training images) whose windows serve as samples.

        Same keywords as ferxai.explain.baselines.ReferenceBaselines.set_reference, so the
        workflow hands references over the same way; `mean_image`/`class_means` are not used.
        """
        if images is not None:
            images = torch.as_tensor(images)
            if images.ndim != 4 or len(images) == 0:
                raise ValueError(f"method {self.name!r}: reference images must be (M, C, H, W), "
                                 f"got {tuple(images.shape)}")
            self.reference = images.detach().float()
        return self

    def required_references(self) -> tuple[str, ...]:
        """Nothing is required: without reference images the samples are Gaussian noise."""
        return ()

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        n, c, h, w = inputs.shape
        dev, dtype = inputs.device, inputs.dtype
        p = self.params
        n_samp = p["n_samples"]
        win = window_masks(h, w, p["window"], p["stride"], dev)  # (nw, H, W) bool
        n_win = len(win)
        keep = win.logical_not().to(dtype).unsqueeze(1)  # (nw, 1, H, W)
        gen = torch.Generator().manual_seed(p["seed"])

        if self.reference is not None:
            ref = self.reference
            if tuple(ref.shape[1:]) != (c, h, w):
                raise ValueError(f"method {self.name!r}: reference images are {tuple(ref.shape[1:])}, "
                                 f"inputs are {(c, h, w)}")
            ref = ref.to(device=dev, dtype=dtype)
            pick = torch.randint(0, len(ref), (n_win, n_samp), generator=gen).to(dev)

            def fill(i: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
                j = (s - 1).clamp_min(0)
                return ref[pick[j // n_samp, j % n_samp]]
        else:
            if not self._warned:
                log.warning("method %r: no reference images (set_reference); sampling windows from "
                            "Gaussian noise with each image's mean and standard deviation", self.name)
                self._warned = True
            noise = torch.randn(n_samp, c, h, w, generator=gen).to(device=dev, dtype=dtype)
            mean = inputs.mean(dim=(2, 3), keepdim=True)
            std = inputs.std(dim=(2, 3), keepdim=True) if h * w > 1 else torch.zeros_like(mean)

            def fill(i: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
                r = (s - 1).clamp_min(0) % n_samp
                return (mean[i] + std[i] * noise[r]).clamp(0, 1)

        def mask(i: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
            out = torch.ones(len(s), 1, h, w, dtype=dtype, device=dev)
            perturbed = s > 0
            out[perturbed] = keep[(s[perturbed] - 1) // n_samp]
            return out

        probs = masked_scores(self._prob_model, inputs, targets, 1 + n_win * n_samp, mask, fill, self.batch_size)
        p_full = probs[:, 0]
        p_without = probs[:, 1:].view(n, n_win, n_samp).mean(dim=2)
        we = log2_odds(p_full)[:, None] - log2_odds(p_without)  # (N, nw)
        area = win.reshape(n_win, -1).to(we.dtype)
        return ((we @ area) / area.sum(0).clamp_min(1.0)).view(n, h, w)
