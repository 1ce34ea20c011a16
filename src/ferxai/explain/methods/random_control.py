"""Control `random`: uniform noise in [0, 1), one independent map per image.

Each image's noise is drawn from a generator seeded by `seed` and a checksum of the image's
values, so an image gets the same map whichever shard, batch or call it is explained in.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch

from ferxai.explain.methods._control import ControlExplainer


class RandomControl(ControlExplainer):
    name = "random"

    def control_maps(self, inputs: torch.Tensor) -> torch.Tensor:
        maps = []
        for image in inputs.cpu().numpy():
            key = zlib.crc32(np.ascontiguousarray(image, dtype=np.float32).tobytes())
            rng = np.random.default_rng([int(self.params["seed"]), key])
            maps.append(rng.random(image.shape[1:], dtype=np.float32))
        return torch.from_numpy(np.stack(maps)).to(inputs.device)
