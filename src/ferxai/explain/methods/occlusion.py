"""Occlusion (Zeiler & Fergus 2014): slide a grey square over the image, record the score drop.

Same definition as Captum's `Occlusion` (window positions, border handling, averaging over the
windows that cover a pixel; the tests check equality), implemented on the shared batched-forward
helper. Captum with perturbations_per_eval = batch_size // N ran as fast in the default layout
(48 px fer_cnn, CPU: equal within noise); this version was kept because all windows of all images
form one flat grid cut into full `batch_size` chunks (Captum's batches are N x ppe, with a partial
one per image set), each chunk is built by one gather instead of a Python loop over windows, and
the chunks go to the model channels-last on the CPU (about 1.3x faster for this model there).
"""

from __future__ import annotations

import torch

from ferxai.explain.baselines import ReferenceBaselines
from ferxai.explain.methods._perturb import PerturbationExplainer, masked_scores, window_masks


class Occlusion(ReferenceBaselines, PerturbationExplainer):
    """Attribution of a pixel = mean over windows covering it of f(x) - f(x with window filled).

    Parameters: ``window`` (side in px, clipped to the image), ``stride`` (px, <= window),
    ``baseline`` (what fills the window: "black"; "blur" = the image blurred by ``blur_sigma`` px;
    "mean" / "class_mean" = dataset mean image / target class's mean image, see
    ferxai.explain.baselines). All channels of a window are occluded together, so the map is
    (N, H, W) without a channel factor.
    """

    name = "occlusion"

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        n, _, h, w = inputs.shape
        window, stride = self.params["window"], self.params["stride"]
        win = window_masks(h, w, window, stride, inputs.device)  # (nw, H, W) bool
        # sample 0 keeps everything (the unoccluded score), so it shares chunks with the windows
        keep = torch.cat([torch.zeros_like(win[:1]), win]).logical_not().to(inputs.dtype).unsqueeze(1)
        fill = self._baseline(inputs, targets)
        scores = masked_scores(self.forward_model, inputs, targets, len(keep), keep, fill,
                               self.batch_size)  # (N, 1 + nw)
        diff = scores[:, :1] - scores[:, 1:]
        area = win.reshape(len(win), -1).float()  # (nw, H*W)
        total = diff @ area
        count = area.sum(0).clamp_min(1.0)
        return (total / count).view(n, h, w)

