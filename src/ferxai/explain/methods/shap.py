"""SHAP for images: shap's Partition explainer (Owen values) with a `shap.maskers.Image` masker.

shap explains one image at a time (its Partition explainer recurses over one image's masks), so
this wrapper calls it per image with `outputs=[target]`: shap then evaluates the model on groups of
masked copies and prioritises its recursion by the target's output only.
The model callable converts each whole batch to a tensor once and runs `forward_model` (logits or
probabilities, per the explainer's `output`) in chunks of at most `batch_size`.

Details that differ from a plain `shap.Explainer(f, masker)(images)` call:

* images are handed to shap in 0..255 (and divided by 255 again in the callable): shap's inpainting
  maskers convert to uint8 and would otherwise see a black image; blurring is linear, so it is
  unaffected.
* shap's Partition explainer queues masks in pairs, evaluates them, then re-prioritises; how many
  it queues changes the result. It is given a fixed ALGORITHM_BATCH - 1 (it may exceed it by one),
  so maps are the same for every `batch_size`; the callable then runs the model `batch_size`
  inputs at a time.
* shap's blur masker caches the blurred image under `id()` of a temporary array, which Python can
  reuse for the next image; the cache is cleared before every image.
* shap breaks ties in its priority queue with `np.random.randn`; the global NumPy state is seeded
  with `seed` for each image and restored afterwards, so maps are reproducible and independent of
  which other images share the call.

`mode`: "signed" (SHAP values), "abs" (their magnitude, unsigned) or "posneg" (the signed map too:
one map per image is returned; overlays draw its positive and negative parts separately).
"""

from __future__ import annotations

import numpy as np
import torch

from ferxai.explain.methods._perturb import PerturbationExplainer

# Masks shap queues before evaluating them (it then re-prioritises its recursion on the results).
# Fixed, so maps do not depend on `batch_size`; measured on the 48 px fer_cnn against a
# 3000-evaluation reference, 10, 32 and 64 give the same map quality, 128 and more lose it.
ALGORITHM_BATCH = 64


class KernelShap(PerturbationExplainer):
    """Parameters: ``mode`` ("signed" | "abs" | "posneg"), ``max_evals`` (model evaluations per
    image), ``masker`` ("blur(kx,ky)" | "inpaint_telea" | "inpaint_ns" | "black"),
    ``seed``."""

    name = "shap"

    def validate(self) -> None:
        self._explainers: dict[tuple, object] = {}

    def _model_fn(self, device: torch.device, dtype: torch.dtype):
        model, batch_size = self.forward_model, self.batch_size

        @torch.no_grad()
        def f(batch: np.ndarray) -> np.ndarray:
            x = torch.from_numpy(np.ascontiguousarray(batch)).to(device=device, dtype=dtype)
            x = x.permute(0, 3, 1, 2) / 255.0
            outs = [model(x[s:s + batch_size]).float() for s in range(0, len(x), batch_size)]
            return torch.cat(outs).cpu().numpy()

        return f

    def _explainer(self, shape: tuple[int, int, int], device: torch.device, dtype: torch.dtype):
        import shap

        key = (shape, str(device), dtype)
        if key not in self._explainers:
            masker_value = self.params["masker"]
            if masker_value == "black":
                masker = shap.maskers.Image(np.zeros(shape, dtype=np.float32))
            else:
                masker = shap.maskers.Image(masker_value.replace(" ", ""), shape)
            self._explainers[key] = shap.Explainer(self._model_fn(device, dtype), masker,
                                                   algorithm="partition")
        return self._explainers[key]

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        n, c, h, w = inputs.shape
        explainer = self._explainer((h, w, c), inputs.device, inputs.dtype)
        images = inputs.detach().float().permute(0, 2, 3, 1).cpu().numpy() * 255.0
        shap_batch = ALGORITHM_BATCH - 1
        maps = []
        for i, target in enumerate(targets.tolist()):
            explainer.masker.last_xid = None  # see the module docstring
            state = np.random.get_state()
            try:
                np.random.seed(self.params["seed"])
                result = explainer(images[i:i + 1], max_evals=self.params["max_evals"],
                                   batch_size=shap_batch, outputs=np.array([target]), silent=True)
            finally:
                np.random.set_state(state)
            values = np.asarray(result.values)[0, ..., 0].sum(axis=-1)  # (H, W, C, 1) -> (H, W)
            maps.append(torch.from_numpy(values.astype(np.float32)))
        out = torch.stack(maps).to(inputs.device)
        return out.abs() if self.params["mode"] == "abs" else out
