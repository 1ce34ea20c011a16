"""Grad-CAM (Selvaraju et al. 2017): activations weighted by their spatially averaged gradients.

One forward+backward pass per image (x6 with aug_smooth); see `_cam` for the shared behaviour.
"""

from __future__ import annotations

import pytorch_grad_cam

from ferxai.explain.methods._cam import CamExplainer


class GradCAM(CamExplainer):
    name = "gradcam"
    cam_class = pytorch_grad_cam.GradCAM
