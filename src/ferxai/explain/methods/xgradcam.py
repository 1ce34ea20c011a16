"""XGrad-CAM (Fu et al. 2020): gradients weighted by normalised activations.

One forward+backward pass per image (x6 with aug_smooth); see `_cam` for the shared behaviour.
"""

from __future__ import annotations

import pytorch_grad_cam

from ferxai.explain.methods._cam import CamExplainer


class XGradCAM(CamExplainer):
    name = "xgradcam"
    cam_class = pytorch_grad_cam.XGradCAM
