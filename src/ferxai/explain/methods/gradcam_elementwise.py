"""Grad-CAM element-wise: ReLU(activations x gradients) element-wise, summed over channels.

One forward+backward pass per image (x6 with aug_smooth); see `_cam` for the shared behaviour.
"""

from __future__ import annotations

import pytorch_grad_cam

from ferxai.explain.methods._cam import CamExplainer


class GradCAMElementWise(CamExplainer):
    name = "gradcam_elementwise"
    cam_class = pytorch_grad_cam.GradCAMElementWise
