"""Score-CAM (Wang et al. 2020): a channel's weight is the target score of the input masked by
that channel's upsampled, min-max normalised activation map (softmax over channels).

Gradient-free. Cost: 1 forward pass plus one per channel of the target layer, per image (x6 with
aug_smooth); the library batches the masked copies of an image `batch_size` at a time. Memory: the
masked copies of every image in a call are built at once (N x channels x image). The library's
per-image progress bars are switched off. See `_cam` for the shared behaviour.
"""

from __future__ import annotations

from typing import Any

import pytorch_grad_cam
import pytorch_grad_cam.score_cam as _score_cam

from ferxai.explain.methods._cam import CamExplainer, _quiet_progress


class ScoreCAM(CamExplainer):
    name = "scorecam"
    cam_class = pytorch_grad_cam.ScoreCAM
    uses_gradients = False

    def _make_cam(self) -> Any:
        cam = super()._make_cam()
        cam.batch_size = self.batch_size  # read by ScoreCAM.get_cam_weights (default 16)
        return cam

    def _library_context(self) -> Any:
        return _quiet_progress(_score_cam)
