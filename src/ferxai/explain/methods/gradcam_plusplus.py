"""Grad-CAM++ (Chattopadhay et al. 2018): channel weights from higher-order gradient terms.

One forward+backward pass per image (x6 with aug_smooth); see `_cam` for the shared behaviour.
"""

from __future__ import annotations

import pytorch_grad_cam

from ferxai.explain.methods._cam import CamExplainer


class GradCAMPlusPlus(CamExplainer):
    name = "gradcam_plusplus"
    cam_class = pytorch_grad_cam.GradCAMPlusPlus
