"""Cascading model-parameter randomisation (Adebayo et al. 2018), the model side of the sanity check.

`cascade(model)` yields the model with its parameterised layers re-initialised one more at a time,
from the output layer down to the input: step 1 randomises the classifier, the last step every
layer. A normalisation layer (batch, layer, group or instance norm) is randomised in the same step
as the layer it normalises (the one registered just before it), as the paper's cascade goes
over the network's weight layers; each step costs every method one recomputation of its maps.
Each step is a copy (the given model is never changed), and a layer's new weights come from
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


NORMALISATION = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def cascade_steps(model: nn.Module) -> list[tuple[str, list[str]]]:
    """(step name, layers it re-initialises), output side first: each weight layer with the
    normalisation layers registered right after it."""
    steps: list[tuple[str, list[str]]] = []
    pending: list[str] = []
    for name, module in reversed(parameterised_layers(model)):
        pending.append(name)
        if not isinstance(module, NORMALISATION):
            steps.append((name, pending))
            pending = []
    if pending:  # normalisation layers before any weight layer (an input norm): a step of their own
        steps.append((pending[-1], pending))
    return steps


def cascade(model: nn.Module, seed: int = 0) -> Iterator[tuple[str, nn.Module]]:
    """(step name, copy of `model` with that step's layers and every layer after them re-initialised)."""
    randomised = copy.deepcopy(model).eval()
    modules = dict(randomised.named_modules())
    for step, names in cascade_steps(model):
        for name in names:
            _reinitialise(modules[name], seed, name)
        yield step, copy.deepcopy(randomised)


__all__ = ["NORMALISATION", "cascade", "cascade_steps", "parameterised_layers"]
