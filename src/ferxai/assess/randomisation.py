"""Cascading model-parameter randomisation (Adebayo et al. 2018), the model side of the sanity check.

`cascade(model)` yields the model with its parameterised layers re-initialised one more at a time,
from the output layer down to the input: step 1 randomises the classifier, the last step every
layer. Each step is a copy (the given model is never changed), and a layer's new weights come from
a generator seeded by `seed` and the layer's name, so a step is the same on every run and
independent of how many steps are taken. A method whose maps stay similar as more layers are
randomised (ferxai.assess.similarity) explains the input more than the model.
"""

from __future__ import annotations

import copy
import zlib
from typing import Iterator

import torch
import torch.nn as nn


def parameterised_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules that own parameters, in registration order (the forward order of the zoo's models)."""
    return [(name, m) for name, m in model.named_modules() if any(True for _ in m.parameters(recurse=False))]


def _reinitialise(module: nn.Module, seed: int, name: str) -> None:
    generator = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
    with torch.no_grad():
        for pname, param in module.named_parameters(recurse=False):
            if param.ndim >= 2:  # weights: Kaiming-uniform bounds, as torch initialises conv/linear
                fan_in = param[0].numel()
                bound = (6.0 / fan_in) ** 0.5 / (2 ** 0.5)
                fresh = torch.empty(param.shape).uniform_(-bound, bound, generator=generator)
            else:  # biases and norm scales: small noise around 0 (biases) or 1 (scales)
                centre = 1.0 if pname == "weight" else 0.0
                fresh = centre + 0.1 * torch.randn(param.shape, generator=generator)
            param.copy_(fresh.to(param))


def cascade(model: nn.Module, seed: int = 0) -> Iterator[tuple[str, nn.Module]]:
    """(layer name, copy of `model` with that layer and every layer after it re-initialised)."""
    randomised = copy.deepcopy(model).eval()
    modules = dict(randomised.named_modules())
    for name, _ in reversed(parameterised_layers(model)):
        _reinitialise(modules[name], seed, name)
        yield name, copy.deepcopy(randomised)


__all__ = ["cascade", "parameterised_layers"]
