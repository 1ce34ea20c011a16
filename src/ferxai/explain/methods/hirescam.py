"""HiResCAM (Draelos & Carin 2020): activations times gradients element-wise, summed over channels (no averaging).

One forward+backward pass per image (x6 with aug_smooth); see `_cam` for the shared behaviour.
"""

from __future__ import annotations

import pytorch_grad_cam

from ferxai.explain.methods._cam import CamExplainer


class HiResCAM(CamExplainer):
    name = "hirescam"
    cam_class = pytorch_grad_cam.HiResCAM
