"""LayerCAM (Jiang et al. 2021): positive gradients weight each activation location.

One forward+backward pass per image (x6 with aug_smooth); see `_cam` for the shared behaviour.
"""

from __future__ import annotations

import pytorch_grad_cam

from ferxai.explain.methods._cam import CamExplainer


class LayerCAM(CamExplainer):
    name = "layercam"
    cam_class = pytorch_grad_cam.LayerCAM
