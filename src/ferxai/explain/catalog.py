"""Every explanation method as plain data: parameters, their checks, sign and cost model.

This is the one place a method's name, family, library, parameter defaults and allowed values,
sign and number of model passes are stated. Config validation reads it before any job runs (so a
bad value fails naming its config key), `Explainer` subclasses take their class attributes from it,
the registry imports implementations through it, and the preflight reads the cost model from it.

It imports only the standard library: Snakemake validates the configuration on every invocation,
dry runs included, and importing torch and the method libraries to learn a default costs seconds.
Checks that need the model (a layer path exists, an architecture is supported) stay in the
classes' `validate()`.

Adding a method: its file in `ferxai.explain.methods` (an `Explainer` subclass with `name` and
`_attribute`) plus one `Method(...)` entry below.
"""

from __future__ import annotations

import copy
import math
import numbers
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ferxai.explain.params import ExplainerConfigError

# Input side assumed by size-dependent cost models before an image has been seen (FER is 48 px).
DEFAULT_HW: tuple[int, int] = (48, 48)

# Reference inputs (see ferxai.explain.baselines): one per image ...
BASELINES: tuple[str, ...] = ("black", "blur", "uniform", "mean", "class_mean")
# ... or a distribution to draw several from (SHAP-style methods) ...
DISTRIBUTIONS: tuple[str, ...] = BASELINES + ("reference",)
# ... of which these give a different draw each time ...
RANDOM_KINDS: frozenset[str] = frozenset({"uniform", "reference"})
# ... and these fill a removed region deterministically (perturbation methods).
FILL_KINDS: tuple[str, ...] = ("black", "blur", "mean", "class_mean")

# captum's integrated-gradients quadratures (approximation_methods.SUPPORTED_METHODS; the tests
# compare the two).
IG_QUADRATURES: tuple[str, ...] = ("riemann_left", "riemann_right", "riemann_middle",
                                   "riemann_trapezoid", "gausslegendre")

# SmoothGrad aggregations; those keeping the gradient's sign give signed maps.
SMOOTHGRAD_AGGREGATIONS: tuple[str, ...] = ("abs", "sq", "raw", "grad_x_input")
SMOOTHGRAD_SIGNED: frozenset[str] = frozenset({"raw", "grad_x_input"})

INTERPOLATE_MODES: tuple[str, ...] = ("nearest", "bilinear", "bicubic", "area")

# Test-time augmentations pytorch-grad-cam averages over with aug_smooth: HorizontalFlip (2) x
# Multiply (0.9, 1, 1.1) (3); each is one full CAM computation. Checked against the library in
# the tests.
AUG_SMOOTH_PASSES = 6

LRP_COMPOSITES: tuple[str, ...] = ("epsilon", "epsilon_plus_flat", "alpha2_beta1", "epsilon_gamma_box")
# zennit computes a rule layer's relevance by running that layer forward and backward once per
# parameter modifier of its rule, on the whole batch: epsilon 1, z+ 2 (positive and negative
# weights), alpha-beta 4, gamma 5. The rule of the hidden convolutions, which dominate the cost,
# sets the count; the plain forward pass is shared. Checked against zennit's rules in the tests.
LRP_MODIFIED_PASSES: dict[str, int] = {"epsilon": 1, "epsilon_plus_flat": 2, "alpha2_beta1": 4,
                                       "epsilon_gamma_box": 5}

# SHAP's maskers, named as shap.maskers.Image names them: "blur(kx,ky)" (spaces are dropped) or an
# inpainting name; "black" is a zero background.
SHAP_MASKER = r"blur\( *\d+ *, *\d+ *\)|inpaint_telea|inpaint_ns|black"


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class Param:
    """One parameter: its kind, default and allowed values.

    kind     "bool" | "int" | "float" | "choice" | "text" (matching `pattern`) | "layer" (a
             dotted module path, checked against the model by the method) | "any" (unchecked;
             only for methods outside this catalog, whose parameters are inferred)
    low/high numeric range, inclusive unless low_open/high_open
    nullable None is allowed too (what None means is the method's documented default rule)
    """

    kind: str
    default: Any = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[Any, ...] = ()
    pattern: str | None = None
    expected: str = ""  # wording of `pattern` in error messages
    nullable: bool = False

    def allowed(self) -> str:
        """The allowed values, as error messages state them."""
        if self.kind == "bool":
            text = "true or false"
        elif self.kind in ("int", "float"):
            what = "an integer" if self.kind == "int" else "a number"
            if self.high is None:
                text = f"{what} {'>' if self.low_open else '>='} {_num(self.low)}" if self.low is not None else what
            else:
                lo = "(" if self.low_open else "["
                hi = ")" if self.high_open else "]"
                text = f"{what} in {lo}{_num(self.low)}, {_num(self.high)}{hi}"
        elif self.kind == "choice":
            text = f"one of {list(self.choices)}"
        elif self.kind == "text":
            text = self.expected or f"a string matching {self.pattern!r}"
        elif self.kind == "layer":
            text = "a dotted module path like 'layer4'"
        else:
            text = "any value"
        return f"{text} or null" if self.nullable else text

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.nullable or self.kind == "any"
        if self.kind == "any":
            return True
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind == "choice":
            return any(value == c and type(value) is type(c) for c in self.choices)
        if self.kind == "text":
            return isinstance(value, str) and re.fullmatch(self.pattern or ".*", value.strip(" ")) is not None
        if self.kind == "layer":
            return isinstance(value, str) and value != ""
        number = numbers.Integral if self.kind == "int" else numbers.Real
        if isinstance(value, bool) or not isinstance(value, number) or not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            return False
        return True

    def plain(self, value: Any) -> Any:
        """`value` (already accepted) as a plain Python int/float (numpy scalars are accepted)."""
        if value is None:
            return None
        if self.kind == "int":
            return int(value)
        if self.kind == "float":
            return float(value)
        return value


def _num(x: float | None) -> str:
    return repr(int(x)) if isinstance(x, float) and x.is_integer() else repr(x)


def Bool(default: bool) -> Param:
    return Param("bool", default)


def Int(default: int | None, low: int | None = 1, high: int | None = None, nullable: bool = False) -> Param:
    return Param("int", default, low=low, high=high, nullable=nullable)


def Float(default: float | None, low: float | None = 0.0, high: float | None = None, *, low_open: bool = False,
          high_open: bool = False, nullable: bool = False) -> Param:
    return Param("float", default, low=low, high=high, low_open=low_open, high_open=high_open, nullable=nullable)


def Choice(default: str, choices: tuple[str, ...]) -> Param:
    return Param("choice", default, choices=tuple(choices))


def Layer() -> Param:
    """A target layer; None = the architecture's default layer (resolved against the model)."""
    return Param("layer", None, nullable=True)


def Seed() -> Param:
    return Int(0, low=0)


def BlurSigma() -> Param:
    """Gaussian blur of the "blur" baseline, in pixels."""
    return Float(5.0, 0.0, low_open=True)


@dataclass(frozen=True)
class Rule:
    """A check across parameters: `ok(params)` must hold; else `param` is reported with `message(params)`."""

    param: str
    ok: Callable[[Mapping[str, Any]], bool]
    message: Callable[[Mapping[str, Any]], str]


# --------------------------------------------------------------------------- methods


@dataclass(frozen=True)
class Method:
    """One explanation method.

    library         pip distribution the method needs (None: ferxai's own code)
    implementation  "module:Class", imported only when the method is built
    signed          whether maps carry a sign (diverging colormap); a function of the parameters
                    where they decide it
    passes          model passes (forward, or forward+backward) per image: f(params, cost), where
                    `cost` has the image side `hw` and, for `needs_channels` methods, the target
                    layer's `channels`
    inputs          model inputs one image puts into one forward pass (None: = passes); differs
                    for methods whose passes run one after another
    """

    name: str
    family: str
    library: str | None
    implementation: str
    params: Mapping[str, Param] = field(default_factory=dict)
    signed: bool | Callable[[Mapping[str, Any]], bool] = True
    passes: Callable[[Mapping[str, Any], "Cost"], float] = lambda p, c: 1.0
    inputs: Callable[[Mapping[str, Any], "Cost"], float] | None = None
    rules: tuple[Rule, ...] = ()
    needs_channels: bool = False

    @property
    def defaults(self) -> dict[str, Any]:
        return {key: copy.deepcopy(p.default) for key, p in self.params.items()}

    def _error(self, param: str | None, message: str) -> ExplainerConfigError:
        return ExplainerConfigError(f"method {self.name!r}: {message}", method=self.name, param=param)

    def check(self, params: Mapping[str, Any]) -> None:
        """Raise ExplainerConfigError naming method, parameter, allowed values and the value given,
        for an unknown name or a value the parameter does not allow (unset ones take defaults)."""
        unknown = sorted(set(params) - set(self.params))
        if unknown:
            raise self._error(unknown[0], f"unknown parameter(s) {unknown}; valid: "
                                          f"{', '.join(sorted(self.params)) or 'none'}")
        for key, value in params.items():
            spec = self.params[key]
            if not spec.accepts(value):
                raise self._error(key, f"parameter {key!r} must be {spec.allowed()}, got {value!r}")
        merged = self.resolve(params, checked=True)
        for rule in self.rules:
            if not rule.ok(merged):
                raise self._error(rule.param, f"parameter {rule.param!r} {rule.message(merged)}, "
                                              f"got {merged[rule.param]!r}")

    def resolve(self, params: Mapping[str, Any], *, checked: bool = False) -> dict[str, Any]:
        """Defaults overridden by `params`, numbers as plain int/float; checks first unless `checked`."""
        if not checked:
            self.check(params)
        merged = self.defaults
        for key, value in params.items():
            merged[key] = self.params[key].plain(copy.deepcopy(value))
        return merged

    def is_signed(self, params: Mapping[str, Any] | None = None) -> bool:
        if callable(self.signed):
            return bool(self.signed(self.resolve(params or {})))
        return bool(self.signed)

    def passes_per_image(self, params: Mapping[str, Any] | None = None, *, hw: tuple[int, int] = DEFAULT_HW,
                         channels: int | None = None) -> float:
        """Model passes per explained image, for images of side `hw` (and `channels` in the
        target layer, which the per-channel CAMs need)."""
        return float(self.passes(self.resolve(params or {}), self._cost(hw, channels)))

    def model_inputs_per_image(self, params: Mapping[str, Any] | None = None, *,
                               hw: tuple[int, int] = DEFAULT_HW, channels: int | None = None) -> float:
        """Model inputs one image contributes to a single forward pass (see Explainer)."""
        if self.inputs is None:
            return self.passes_per_image(params, hw=hw, channels=channels)
        return float(self.inputs(self.resolve(params or {}), self._cost(hw, channels)))

    def _cost(self, hw: tuple[int, int], channels: int | None) -> "Cost":
        if self.needs_channels and channels is None:
            raise ValueError(f"method {self.name!r}: passes per image depend on the target layer's "
                             f"channel count; give channels=")
        return Cost((int(hw[0]), int(hw[1])), channels)


@dataclass(frozen=True)
class Cost:
    """What a cost model may depend on besides the parameters."""

    hw: tuple[int, int]
    channels: int | None = None


def infer_params(defaults: Mapping[str, Any]) -> dict[str, Param]:
    """Parameters of a method outside the catalog (a test double): kinds from the defaults' types,
    no ranges."""
    out = {}
    for key, value in defaults.items():
        if isinstance(value, bool):
            out[key] = Bool(value)
        elif isinstance(value, numbers.Integral):
            out[key] = Int(value, low=None)
        elif isinstance(value, numbers.Real):
            out[key] = Float(value, low=None)
        else:
            out[key] = Param("any", value)
    return out


# --------------------------------------------------------------------------- cost helpers


def window_count(size: int, window: int, stride: int) -> int:
    """Sliding-window positions along one side, as Captum's Occlusion places them:
    ceil((size - window) / stride) + 1, the last one cut off at the border."""
    return math.ceil((size - window) / stride) + 1


def n_windows(hw: tuple[int, int], window: int, stride: int) -> int:
    """Windows (side clipped to the image) over an image of side `hw`."""
    h, w = hw
    return window_count(h, min(window, h), stride) * window_count(w, min(window, w), stride)


def n_patches(hw: tuple[int, int], patch: int) -> int:
    return math.ceil(hw[0] / patch) * math.ceil(hw[1] / patch)


def _cam_passes(extra: int, per_channel: bool = False) -> Callable[[Mapping[str, Any], Cost], float]:
    def passes(p: Mapping[str, Any], cost: Cost) -> float:
        n = max(1, extra + ((cost.channels or 0) if per_channel else 0))
        return float(n * (AUG_SMOOTH_PASSES if p.get("aug_smooth") else 1))
    return passes


_STRIDE_WITHIN_WINDOW = Rule("stride", lambda p: p["stride"] <= p["window"],
                             lambda p: f"must be <= window ({p['window']})")

_M = "ferxai.explain.methods"


def _path_params() -> dict[str, Param]:
    """Integrated gradients' path: steps, quadrature, baseline."""
    return {"n_steps": Int(50), "method": Choice("gausslegendre", IG_QUADRATURES),
            "baseline": Choice("black", BASELINES), "blur_sigma": BlurSigma()}


def _cam(name: str, cls: str, extra: int = 1, per_channel: bool = False, target_layer: bool = True) -> Method:
    params = {"target_layer": Layer()} if target_layer else {}
    params.update({"aug_smooth": Bool(False), "eigen_smooth": Bool(False)})
    return Method(name, "cam", None, f"{_M}.{name}:{cls}", params, signed=False,
                  passes=_cam_passes(extra, per_channel), needs_channels=per_channel)


_ENTRIES: tuple[Method, ...] = (
    # ---- gradient family (captum)
    Method("saliency", "gradient", "captum", f"{_M}.saliency:Saliency", {"abs": Bool(True)},
           signed=lambda p: not p["abs"]),
    Method("input_x_gradient", "gradient", "captum", f"{_M}.input_x_gradient:InputXGradient"),
    Method("guided_backprop", "gradient", "captum", f"{_M}.guided_backprop:GuidedBackprop"),
    Method("deconvolution", "gradient", "captum", f"{_M}.deconvolution:Deconvolution"),
    Method("integrated_gradients", "gradient", "captum", f"{_M}.integrated_gradients:IntegratedGradients",
           _path_params(), passes=lambda p, c: p["n_steps"]),
    Method("layer_integrated_gradients", "gradient", "captum",
           f"{_M}.layer_integrated_gradients:LayerIntegratedGradients",
           {"layer": Layer(), "attribute_to_layer_input": Bool(False), **_path_params()},
           # n_steps forward+backward passes, plus forward passes for input and baseline activations
           passes=lambda p, c: p["n_steps"] + 1),
    Method("smoothgrad", "gradient", "captum", f"{_M}.smoothgrad:SmoothGrad",
           {"nt_samples": Int(25), "stdevs": Float(0.15, 0.0, 1.0),
            "aggregation": Choice("abs", SMOOTHGRAD_AGGREGATIONS)},
           signed=lambda p: p["aggregation"] in SMOOTHGRAD_SIGNED, passes=lambda p, c: p["nt_samples"]),
    Method("deeplift", "gradient", "captum", f"{_M}.deeplift:DeepLift",
           {"baseline": Choice("black", BASELINES), "blur_sigma": BlurSigma()},
           passes=lambda p, c: 2),  # input and baseline
    Method("deeplift_shap", "gradient", "captum", f"{_M}.deeplift_shap:DeepLiftShap",
           {"n_baselines": Int(8), "baseline": Choice("uniform", DISTRIBUTIONS), "blur_sigma": BlurSigma()},
           # deterministic kinds would repeat one baseline, so only one is used
           passes=lambda p, c: 2 * (p["n_baselines"] if p["baseline"] in RANDOM_KINDS else 1)),
    Method("gradient_shap", "gradient", "captum", f"{_M}.gradient_shap:GradientShap",
           {"n_samples": Int(20), "stdevs": Float(0.09, 0.0, 1.0),
            "baseline": Choice("uniform", DISTRIBUTIONS), "blur_sigma": BlurSigma()},
           passes=lambda p, c: p["n_samples"]),
    Method("guided_gradcam", "gradient", "captum", f"{_M}.guided_gradcam:GuidedGradCam",
           {"layer": Layer(), "interpolate_mode": Choice("bilinear", INTERPOLATE_MODES),
            "attribute_to_layer_input": Bool(False)},
           passes=lambda p, c: 2),  # one Grad-CAM pass, one guided-backprop pass
    # ---- CAM family (ferxai's own on torch, equal to pytorch-grad-cam's classes)
    _cam("gradcam", "GradCAM"),
    _cam("hirescam", "HiResCAM"),
    _cam("gradcam_elementwise", "GradCAMElementWise"),
    _cam("gradcam_plusplus", "GradCAMPlusPlus"),
    _cam("xgradcam", "XGradCAM"),
    # one pass (activations and original score), then one per ablated channel
    _cam("ablationcam", "AblationCAM", extra=1, per_channel=True),
    # one pass, then one per channel-masked input
    _cam("scorecam", "ScoreCAM", extra=1, per_channel=True),
    _cam("eigencam", "EigenCAM"),
    _cam("eigengradcam", "EigenGradCAM"),
    _cam("layercam", "LayerCAM"),
    # all biased layers of the network, so no target layer
    _cam("fullgrad", "FullGrad", target_layer=False),
    # ---- perturbation family
    Method("occlusion", "perturbation", None, f"{_M}.occlusion:Occlusion",
           {"window": Int(8), "stride": Int(4), "baseline": Choice("black", FILL_KINDS), "blur_sigma": BlurSigma()},
           rules=(_STRIDE_WITHIN_WINDOW,),
           # one pass per window plus the unoccluded image
           passes=lambda p, c: n_windows(c.hw, p["window"], p["stride"]) + 1),
    Method("feature_ablation", "perturbation", None, f"{_M}.feature_ablation:FeatureAblation",
           {"patch_size": Int(4), "baseline": Choice("black", FILL_KINDS), "blur_sigma": BlurSigma()},
           passes=lambda p, c: n_patches(c.hw, p["patch_size"]) + 1),
    # lime's algorithm, ferxai's code (checked against lime_image)
    Method("lime", "perturbation", None, f"{_M}.lime:Lime",
           {"segmentation": Choice("slic", ("slic", "quickshift")),
            "n_segments": Int(None, low=2, nullable=True),
            "compactness": Float(10.0, 0.0, low_open=True),
            "kernel_size": Float(None, 0.0, low_open=True, nullable=True),
            "max_dist": Float(None, 0.0, low_open=True, nullable=True),
            "ratio": Float(None, 0.0, 1.0, nullable=True),
            "num_samples": Int(500, low=2),
            "kernel_width": Float(0.25, 0.0, low_open=True),
            "hide_color": Choice("mean", ("mean", "black")),
            "seed": Seed()},
           passes=lambda p, c: p["num_samples"]),
    # ferxai's own Partition explainer, equal to shap's (tests/test_explain_shap.py)
    Method("shap", "perturbation", None, f"{_M}.shap:PartitionShap",
           {"mode": Choice("signed", ("signed", "abs", "posneg")),
            "max_evals": Int(300, low=3),
            "masker": Param("text", "blur(8,8)", pattern=SHAP_MASKER,
                            expected="'blur(kx,ky)', 'inpaint_telea', 'inpaint_ns' or 'black'"),
            "seed": Seed()},
           signed=lambda p: p["mode"] != "abs", passes=lambda p, c: p["max_evals"]),
    Method("shapley_sampling", "perturbation", None, f"{_M}.shapley_sampling:ShapleySampling",
           {"n_samples": Int(25), "patch_size": Int(8), "baseline": Choice("black", FILL_KINDS),
            "blur_sigma": BlurSigma(), "seed": Seed()},
           # the all-baseline and full image once, the F - 1 inner prefixes of every permutation
           passes=lambda p, c: 2 + p["n_samples"] * max(0, n_patches(c.hw, p["patch_size"]) - 1)),
    Method("meaningful_perturbation", "perturbation", None,
           f"{_M}.meaningful_perturbation:MeaningfulPerturbation",
           {"iterations": Int(100), "lr": Float(0.1, 0.0, low_open=True), "l1": Float(0.05),
            "tv": Float(0.2), "tv_beta": Float(3.0, 1.0), "mask_size": Int(12, low=2),
            "blur_sigma": Float(5.0)},
           signed=False, passes=lambda p, c: p["iterations"],
           # iterations run one after another; each pass holds one input per image
           inputs=lambda p, c: 1),
    Method("prediction_difference", "perturbation", None, f"{_M}.prediction_difference:PredictionDifference",
           {"window": Int(8), "stride": Int(4), "n_samples": Int(10), "seed": Seed()},
           rules=(_STRIDE_WITHIN_WINDOW,),
           passes=lambda p, c: 1 + n_windows(c.hw, p["window"], p["stride"]) * p["n_samples"]),
    Method("rise", "perturbation", None, f"{_M}.rise:Rise",
           {"n_masks": Int(1000), "mask_size": Int(8), "p": Float(0.5, 0.0, 1.0, low_open=True), "seed": Seed()},
           signed=False, passes=lambda p, c: p["n_masks"]),
    # ---- controls: maps that ignore the model, to test the metrics (no model pass)
    Method("random", "control", None, f"{_M}.random_control:RandomControl", {"seed": Seed()},
           signed=False, passes=lambda p, c: 0.0, inputs=lambda p, c: 1),
    Method("edge", "control", None, f"{_M}.edge_control:EdgeControl",
           signed=False, passes=lambda p, c: 0.0, inputs=lambda p, c: 1),
    Method("center", "control", None, f"{_M}.center_control:CenterControl",
           {"sigma": Float(0.25, 0.0, low_open=True)},
           signed=False, passes=lambda p, c: 0.0, inputs=lambda p, c: 1),
    # ---- relevance propagation (zennit)
    Method("lrp", "lrp", "zennit", f"{_M}.lrp:LRP",
           {"composite": Choice("epsilon_plus_flat", LRP_COMPOSITES), "epsilon": Float(1e-6, 0.0, low_open=True)},
           passes=lambda p, c: LRP_MODIFIED_PASSES[p["composite"]],
           # the modified passes run per layer inside one batch, not as extra inputs
           inputs=lambda p, c: 1),
)

METHODS: dict[str, Method] = {m.name: m for m in _ENTRIES}


def method_names() -> list[str]:
    return sorted(METHODS)


def get(name: str) -> Method:
    """The catalog entry of `name`; ExplainerConfigError listing the known names if there is none."""
    try:
        return METHODS[name]
    except (KeyError, TypeError):
        raise ExplainerConfigError(f"unknown explanation method {name!r}; known: {', '.join(method_names())}",
                                   method=name) from None


def check_params(name: str, params: Mapping[str, Any]) -> None:
    """Check `params` of method `name` against the catalog (see Method.check)."""
    get(name).check(params)


__all__ = [
    "AUG_SMOOTH_PASSES", "BASELINES", "DEFAULT_HW", "DISTRIBUTIONS", "FILL_KINDS", "IG_QUADRATURES",
    "LRP_COMPOSITES", "LRP_MODIFIED_PASSES", "METHODS", "Cost", "Method", "Param", "Rule",
    "check_params", "get", "infer_params", "method_names", "n_patches", "n_windows", "window_count",
]
