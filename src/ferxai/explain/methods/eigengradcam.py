"""EigenGrad-CAM: first principal component of activations x gradients (class-specific EigenCAM).

One forward+backward pass per image (x6 with aug_smooth); see `_cam` for the shared behaviour.
"""

from __future__ import annotations

import pytorch_grad_cam

from ferxai.explain.methods._cam import CamExplainer


class EigenGradCAM(CamExplainer):
    name = "eigengradcam"
    cam_class = pytorch_grad_cam.EigenGradCAM
    extra_passes = 1
