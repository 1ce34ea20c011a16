"""Make a copy of a model that hook-based attribution methods can explain correctly.

DeepLIFT, guided backprop, deconvolution and guided Grad-CAM hook *activation modules*: they
store a module's input/output during the forward pass and rewrite its gradient on the way back.
That silently goes wrong (or raises deep inside Captum) when

1. an activation runs in place (its input is overwritten by its output),
2. one activation module is *called more than once* per forward: torchvision's ``BasicBlock``
   and ``Bottleneck`` call ``self.relu`` two/three times, so the module's stored input/output
   belongs to the last call only,
3. a block modifies a hooked tensor in place (``out += identity`` in torchvision's ResNet blocks),
4. an activation is a function call rather than a module (the final ``F.relu`` of DenseNet),
   so no hook ever sees it,
5. two hooked modules are directly chained (fer_cnn's ``relu2`` -> ``pool``): Captum hooks the
   shared tensor once as the first module's output and once as the second's input, the output
   hook runs first and sees the gradient *before* the second module rewrites it, and DeepLIFT
   loses summation-to-delta (|error| ~1e-1 on a small fer_cnn).

:func:`prepare_for_attribution` returns a deep copy with all five fixed, computing exactly the
same outputs, with every existing module name unchanged (target layers such as ``layer4`` or
``features.norm5`` still resolve). Fixes (1) and (5) are generic and live here: in-place flags are
cleared, and every activation module gets a forward pre-hook that hands it a copy of its input,
so each hook sits on its own tensor. Fixes (2)-(4) depend on the architecture and live in its
module (``make_attributable`` in ``ferxai.models.resnet``, ``ferxai.models.densenet``; found
through `ferxai.models.zoo.make_attributable`): they swap the ``__class__`` of known blocks for a
subclass whose ``forward`` uses separate modules (``relu``, ``relu2``, ``relu3``; DenseNet's
``relu_out``) and out-of-place adds. Reuse that no known fix removes is found generically: a
probe forward counts the calls of every activation module, and :class:`SurgeryError` names the
culprits.
"""

from __future__ import annotations

import copy
import logging
from collections import Counter
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn as nn

from ferxai.models.zoo import make_attributable

log = logging.getLogger(__name__)

# Activation-like modules whose gradients attribution methods rewrite (DeepLIFT's rescale rule,
# guided backprop's ReLU rule); each must be called at most once per forward.
ACTIVATIONS: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU,
    nn.Mish, nn.Sigmoid, nn.Tanh, nn.Softplus, nn.Softmax, nn.Hardtanh, nn.Hardswish,
    nn.Hardsigmoid, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d,
)

# Default probe side for models that do not record their input size (CNNs accept any size).
PROBE_SIDE = 32


class SurgeryError(RuntimeError):
    """The model still reuses activation modules after surgery; the message names them."""


# --------------------------------------------------------------------------- generic fixes


def _clone_input(_module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)


def _separate_activation_inputs(model: nn.Module) -> None:
    """Give each activation module its own input tensor (fix 5 in the module docstring).

    Registered at surgery time, so this pre-hook runs before any the attribution method adds.
    """
    for module in model.modules():
        if isinstance(module, ACTIVATIONS):
            module.register_forward_pre_hook(_clone_input)


def _no_inplace(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(getattr(module, "inplace", None), bool):
            module.inplace = False


# --------------------------------------------------------------------------- reuse detection


def _probe_input(model: nn.Module) -> torch.Tensor | None:
    """A one-image input the model accepts, inferred from its first conv (None if unknown)."""
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if first is None:
        return None
    side = getattr(model, "image_size", None) or PROBE_SIDE
    ref = first.weight
    return torch.rand(1, first.in_channels, int(side), int(side), device=ref.device, dtype=ref.dtype)


def activation_calls(model: nn.Module, example_input: torch.Tensor,
                     names: Iterable[str] | None = None) -> dict[str, int]:
    """Calls per module in one forward of `example_input`: the activation modules (see
    ACTIVATIONS), or the modules at the dotted `names` when given."""
    wanted = set(names) if names is not None else None
    counts: Counter[str] = Counter()
    handles = []
    for name, module in model.named_modules():
        if (name in wanted) if wanted is not None else isinstance(module, ACTIVATIONS):
            handles.append(module.register_forward_hook(
                lambda _m, _i, _o, name=name: counts.update([name])))
    try:
        with torch.no_grad():
            model(example_input)
    finally:
        for handle in handles:
            handle.remove()
    return dict(counts)


def reused_activations(model: nn.Module, example_input: torch.Tensor | None = None,
                       names: Iterable[str] | None = None) -> dict[str, int]:
    """Activation modules (or the modules at `names`) called more than once per forward:
    {dotted name: calls}.

    Without `example_input` a probe image is inferred from the first conv layer (and the
    model's `image_size`, if it has one); models without a conv layer are not probed.
    """
    if example_input is None:
        example_input = _probe_input(model)
        if example_input is None:
            log.debug("%s: no conv layer to infer a probe input from; reuse not checked", type(model).__name__)
            return {}
    return {name: n for name, n in activation_calls(model, example_input, names).items() if n > 1}


# --------------------------------------------------------------------------- entry point


def prepare_for_attribution(model: nn.Module, example_input: torch.Tensor | None = None, *,
                            check_reuse: bool = True) -> nn.Module:
    """A deep copy of `model` (in eval mode) that hook-based attribution can explain.

    Outputs are identical to the original's; existing module names are unchanged. With
    `check_reuse`, raises :class:`SurgeryError` if some activation module is still called more
    than once per forward (`example_input`: a probe batch; inferred when None).
    """
    prepared = copy.deepcopy(model)
    _no_inplace(prepared)
    make_attributable(prepared)
    _separate_activation_inputs(prepared)
    prepared.eval()
    reused = reused_activations(prepared, example_input) if check_reuse else {}
    if reused:
        listed = ", ".join(f"{name!r} ({n} calls)" for name, n in sorted(reused.items()))
        raise SurgeryError(
            f"activation module(s) called more than once per forward: {listed}; hook-based "
            f"attribution needs one module instance per call (give each call its own module)"
        )
    return prepared


def adopt_prepared_model(explainer: Any, example_input: torch.Tensor | None = None, *,
                         check_reuse: bool = True) -> None:
    """Point an Explainer's `model`/`forward_model` at a prepared copy of its model.

    Call from `validate()`; a model surgery cannot fix becomes UnsupportedModelError.
    """
    from ferxai.explain.base import SoftmaxOutput

    try:
        prepared = prepare_for_attribution(explainer.model, example_input, check_reuse=check_reuse)
    except SurgeryError as err:
        raise explainer.unsupported(str(err)) from err
    explainer.model = prepared
    explainer.forward_model = SoftmaxOutput(prepared) if explainer.output == "softmax" else prepared


def require_relu_modules(explainer: Any) -> None:
    """Guided backprop / deconvolution rewrite nn.ReLU gradients: refuse a model without any."""
    if not any(isinstance(m, nn.ReLU) for m in explainer.model.modules()):
        others = sorted({type(m).__name__ for m in explainer.model.modules() if isinstance(m, ACTIVATIONS)})
        raise explainer.unsupported(
            "the model has no nn.ReLU modules (activations: "
            f"{', '.join(others) or 'none'}), so the modified ReLU backward pass would silently "
            "equal the plain gradient"
        )


# Nonlinear modules for which Captum's DeepLift has no rule: it would backpropagate plain
# gradients through them, and the result would be neither DeepLIFT nor complete.
NO_DEEPLIFT_RULE: tuple[type[nn.Module], ...] = (
    nn.MultiheadAttention, nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm1d, nn.InstanceNorm2d,
    nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
)


def require_deeplift_rules(explainer: Any) -> None:
    """Refuse models containing nonlinear modules without a DeepLIFT rule in Captum."""
    from captum.attr._core.deep_lift import SUPPORTED_NON_LINEAR

    missing: dict[str, str] = {}
    for name, module in explainer.model.named_modules():
        cls = type(module)
        lacks_rule = (isinstance(module, ACTIVATIONS) and cls not in SUPPORTED_NON_LINEAR) or isinstance(
            module, NO_DEEPLIFT_RULE)
        if lacks_rule:
            missing.setdefault(cls.__name__, name)
    if missing:
        listed = ", ".join(f"{cls} (e.g. {name!r})" for cls, name in sorted(missing.items()))
        raise explainer.unsupported(
            f"captum's DeepLift has no rule for {listed}; it would silently use plain gradients "
            f"there and the attributions would not be DeepLIFT's"
        )
