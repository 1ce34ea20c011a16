"""EigenCAM (Muhammad & Yeasin 2020): first principal component of the target layer's activations.

Class-agnostic: the target class is not used (the map is the same for every class). One forward
pass per image, no backward (x6 with aug_smooth). `eigen_smooth` has no further effect, the map is
already a projection. See `_cam` for the shared behaviour.
"""

from __future__ import annotations

import pytorch_grad_cam

from ferxai.explain.methods._cam import CamExplainer


class EigenCAM(CamExplainer):
    name = "eigencam"
    cam_class = pytorch_grad_cam.EigenCAM
    uses_gradients = False
    extra_passes = 1
