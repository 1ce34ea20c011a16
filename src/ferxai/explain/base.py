"""The one shape every explanation method has (Captum's `attribute`, pytorch-grad-cam's targets).

An `Explainer` is built once per (model, parameters) and then called on batches:

    explainer = make_explainer("integrated_gradients", model, n_steps=32)
    maps = explainer.attribute(images, targets)     # (N, H, W) float32, same H, W as images

`images` are float tensors (N, C, H, W) in [0, 1] on the model's device — models normalise their own
input — and `targets` is a long tensor (N,) of class indices, one per image. Methods batch across
images *and* across their own samples/steps/windows; `batch_size` bounds the number of model inputs
evaluated in one forward pass (set by the preflight).
"""

from __future__ import annotations

import types
import warnings
from contextlib import AbstractContextManager
from typing import Any, ClassVar, Mapping

import torch
import torch.nn as nn

from ferxai.explain import catalog
from ferxai.explain.params import ExplainerConfigError
from ferxai.settings import ExplainSettings


_BLAS_CONTROLLER = None


def one_blas_thread() -> AbstractContextManager:
    """numpy/scipy's BLAS limited to one thread while a method runs.

    The methods' own numpy work is many small matrices (EigenCAM's SVD per image, LIME's ridge
    fits, SHAP's regressions). With OpenBLAS threads competing against torch's OpenMP threads, one
    batch of 64 EigenCAM SVDs took 4.6 s here instead of 0.17 s single-threaded. Torch's own
    kernels keep their threads. The controller is built once (10 ms) and reused (0.03 ms a call).
    """
    global _BLAS_CONTROLLER
    from threadpoolctl import ThreadpoolController

    if _BLAS_CONTROLLER is None:
        _BLAS_CONTROLLER = ThreadpoolController()
    return _BLAS_CONTROLLER.limit(limits=1, user_api="blas")


class UnsupportedModelError(RuntimeError):
    """The method cannot explain this model; the message names method, model and reason."""

    def __init__(self, method: str, model: str, reason: str):
        super().__init__(f"method {method!r} cannot explain model {model!r}: {reason}")
        self.method, self.model, self.reason = method, model, reason


class SoftmaxOutput(nn.Module):
    """Wraps a classifier so methods attribute class probabilities instead of logits."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(x), dim=-1)


class Explainer:
    """Base class: subclasses set `name` and implement `_attribute` (and `validate` for model checks).

    Everything else about a method is its `ferxai.explain.catalog` entry (`spec`), copied onto
    the class when it is defined:

    name        registry name, e.g. "integrated_gradients"
    family      "gradient" | "cam" | "perturbation" | "lrp"
    library     pip distribution it needs ("captum", "zennit", "shap", "lime"; None: ours)
    defaults    parameter defaults; any other keyword is rejected by name
    signed      True when attributions carry a sign (diverging colormap); per instance where the
                parameters decide it

    A class whose `name` is not in the catalog (a test double) states `defaults` (and `family`,
    `library`, `signed`) itself; its parameters are then checked by type only.
    """

    name: ClassVar[str] = ""
    family: ClassVar[str] = ""
    library: ClassVar[str | None] = None
    defaults: ClassVar[Mapping[str, Any]] = {}
    signed: ClassVar[bool] = False
    spec: ClassVar[catalog.Method | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("name")
        if not name:
            return  # a shared base (CamExplainer, PerturbationExplainer), not a method
        spec = catalog.METHODS.get(name)
        if spec is None:
            spec = catalog.Method(name, cls.family, cls.library, f"{cls.__module__}:{cls.__qualname__}",
                                  catalog.infer_params(cls.defaults), signed=cls.signed)
        else:
            stated = sorted(k for k in ("family", "library", "defaults", "signed") if k in cls.__dict__)
            if stated:
                raise TypeError(f"{cls.__qualname__}: {', '.join(stated)} of method {name!r} come from "
                                f"its entry in ferxai.explain.catalog; do not state them in the class")
        cls.spec = spec
        cls.family, cls.library = spec.family, spec.library
        cls.defaults = types.MappingProxyType(spec.defaults)
        cls.signed = spec.is_signed()

    @classmethod
    def check_params(cls, params: Mapping[str, Any]) -> None:
        """Names, types, values and cross-parameter rules from the catalog, without a model."""
        cls._spec().check(params)

    @classmethod
    def _spec(cls) -> catalog.Method:
        if cls.spec is None:
            raise TypeError(f"{cls.__qualname__} is not a method (it has no name)")
        return cls.spec

    def __init__(self, model: nn.Module, *, arch: str = "", output: str = ExplainSettings.output,
                 batch_size: int = 64, **params: Any):
        spec = self._spec()
        if output not in ("logits", "softmax"):
            raise ExplainerConfigError(f"method {self.name!r}: output must be 'logits' or 'softmax', got {output!r}",
                                       method=self.name)
        if batch_size < 1:
            raise ExplainerConfigError(f"method {self.name!r}: batch_size must be >= 1, got {batch_size}",
                                       method=self.name)
        self.params: dict[str, Any] = spec.resolve(params)
        self.signed = spec.is_signed(self.params)
        self.arch = arch or type(model).__name__
        self.output = output
        self.batch_size = int(batch_size)
        # `model` keeps the zoo's layer names (target layers are dotted paths into it);
        # `forward_model` is what gets attributed.
        self.model = model.eval()
        self.forward_model = SoftmaxOutput(self.model) if output == "softmax" else self.model
        self.validate()

    # -- to override -------------------------------------------------------------------------
    def validate(self) -> None:
        """Check the model (UnsupportedModelError, or ExplainerConfigError for a layer it lacks).

        Parameter values are already checked against the catalog."""

    @property
    def hw(self) -> tuple[int, int]:
        """Image side of the last `attribute` call (the catalog's default before the first)."""
        return getattr(self, "_hw", catalog.DEFAULT_HW)

    def cost_inputs(self) -> dict[str, Any]:
        """What the catalog's cost model needs besides the parameters (image side; channels)."""
        return {"hw": self.hw}

    def passes_per_image(self) -> float:
        """Cost model: model passes per explained image (forward or forward+backward)."""
        return self._spec().passes_per_image(self.params, **self.cost_inputs())

    def model_inputs_per_image(self) -> float:
        """Model inputs one image contributes to a single forward pass.

        Usually all its passes are stacked into batches (IG steps, LIME samples), so this equals
        `passes_per_image`; a method that iterates (Meaningful Perturbation optimises a mask step by
        step) puts one input per image in each pass and batches across images instead.
        """
        spec = self._spec()
        if spec.inputs is None:
            return self.passes_per_image()
        return spec.model_inputs_per_image(self.params, **self.cost_inputs())

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # -- the one entry point -----------------------------------------------------------------
    def attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if inputs.ndim != 4:
            raise ValueError(f"method {self.name!r}: inputs must be (N, C, H, W), got shape {tuple(inputs.shape)}")
        self._hw = (int(inputs.shape[2]), int(inputs.shape[3]))
        targets = torch.as_tensor(targets, dtype=torch.long, device=inputs.device).reshape(-1)
        if len(targets) != len(inputs):
            # pytorch-grad-cam silently zeroes images without a target; refuse instead.
            raise ValueError(f"method {self.name!r}: {len(inputs)} images but {len(targets)} targets")
        with warnings.catch_warnings(), one_blas_thread():
            # captum warns on every call that it set requires_grad on the input; that is intended.
            warnings.filterwarnings("ignore", message="Input Tensor .* did not already require gradients")
            maps = self._attribute(inputs, targets)
        if maps.ndim == 4:
            maps = maps.sum(dim=1)  # channels -> one map per image (Captum's convention for pixels)
        expected = (inputs.shape[0], inputs.shape[2], inputs.shape[3])
        if tuple(maps.shape) != expected:
            raise RuntimeError(f"method {self.name!r} returned shape {tuple(maps.shape)}, expected {expected}")
        return maps.detach().float()

    def unsupported(self, reason: str) -> UnsupportedModelError:
        return UnsupportedModelError(self.name, self.arch, reason)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "family": self.family, "library": self.library,
                "signed": self.signed, "params": self.params, "output": self.output,
                "passes_per_image": self.passes_per_image()}
