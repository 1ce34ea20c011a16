"""Meaningful perturbation (Fong & Vedaldi 2017), the deletion game.

Learn the smallest, smoothest region whose blurring destroys the evidence for the target class:

    min_m  f_c(x * M + blur(x) * (1 - M)) + l1 * mean|1 - m| + tv * mean(|grad m|^beta)

with m a `mask_size` x `mask_size` mask in [0, 1] (1 = keep) and M its bilinear upsampling to
the image, optimised by Adam (learning rate `lr`, `iterations` steps, m clipped to [0, 1] after
each step, starting from m = 1). f_c is the target's softmax probability, as in the paper, whatever
the explainer's `output` (a logit has no floor, so minimising it would delete the whole image).
The regularisers are means rather than the paper's sums, so l1/tv do not depend on the mask size;
the paper's random jitter of the mask is left out so that the result is deterministic.

The masks of all images in a call are optimised together, `batch_size` images per
forward+backward pass; as Adam works element-wise this equals optimising each mask alone.
Attribution = 1 - M (higher = more important).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ferxai.explain.baselines import gaussian_blur
from ferxai.explain.methods._perturb import PerturbationExplainer, fast_layout


class MeaningfulPerturbation(PerturbationExplainer):
    """Parameters: ``iterations``, ``lr``, ``l1``, ``tv``, ``tv_beta``, ``mask_size`` (side of the
    learnt mask), ``blur_sigma`` (px, Gaussian blur that stands for deleted evidence)."""

    name = "meaningful_perturbation"

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        out = []
        for start in range(0, len(inputs), self.batch_size):
            out.append(self._optimise(inputs[start:start + self.batch_size], targets[start:start + self.batch_size]))
        return torch.cat(out)

    def _optimise(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        p = self.params
        n, _, h, w = x.shape
        x = x.detach()
        blurred = gaussian_blur(x, p["blur_sigma"])
        delta = x - blurred
        s = p["mask_size"]
        m = torch.ones(n, 1, s, s, device=x.device, dtype=x.dtype, requires_grad=True)
        opt = torch.optim.Adam([m], lr=p["lr"])
        beta = p["tv_beta"]
        for _ in range(p["iterations"]):
            with torch.enable_grad():
                up = F.interpolate(m, size=(h, w), mode="bilinear", align_corners=False)
                logits = self.model(fast_layout(blurred + up * delta))
                prob = torch.softmax(logits, dim=1).gather(1, t[:, None]).squeeze(1)
                l1 = (1 - m).abs().flatten(1).mean(1)
                tv = ((m[:, :, 1:] - m[:, :, :-1]).abs().pow(beta).flatten(1).mean(1)
                      + (m[:, :, :, 1:] - m[:, :, :, :-1]).abs().pow(beta).flatten(1).mean(1))
                loss = (prob + p["l1"] * l1 + p["tv"] * tv).sum()
                (grad,) = torch.autograd.grad(loss, m)
            m.grad = grad
            opt.step()
            with torch.no_grad():
                m.clamp_(0, 1)
        with torch.no_grad():
            up = F.interpolate(m, size=(h, w), mode="bilinear", align_corners=False)
        return (1 - up[:, 0]).detach()
