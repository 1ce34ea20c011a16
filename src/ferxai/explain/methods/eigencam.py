"""EigenCAM (Muhammad & Yeasin 2020): first principal component of the target layer's activations.

Class-agnostic: the target class is not used (the map is the same for every class). One forward
pass per image, no backward (x6 with aug_smooth). `eigen_smooth` has no further effect, the map is
already a projection (`_eigen.first_component_projection`: batched, and signed the same on every
machine, where a plain SVD's sign depends on the LAPACK build). See `_cam` for the rest.
"""

from __future__ import annotations

import torch

from ferxai.explain.methods._cam import CamExplainer, LayerRecord
from ferxai.explain.methods._eigen import first_component_projection


class EigenCAM(CamExplainer):
    name = "eigencam"
    uses_gradients = False

    def layer_map(self, layer: LayerRecord, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return first_component_projection(layer.acts)
