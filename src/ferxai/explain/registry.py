"""Method name -> implementation. Adding a method: one file in `methods/`, one line here.

Entries are "module:Class" strings so a method's backing library is imported only when that
method is used: a broken or missing optional library cannot take the other methods down.
"""

from __future__ import annotations

import importlib
from typing import Any

import torch.nn as nn

from ferxai.explain.base import Explainer, ExplainerConfigError

_M = "ferxai.explain.methods"

METHODS: dict[str, str] = {
    # gradient family (captum)
    "saliency": f"{_M}.saliency:Saliency",
    "input_x_gradient": f"{_M}.input_x_gradient:InputXGradient",
    "guided_backprop": f"{_M}.guided_backprop:GuidedBackprop",
    "deconvolution": f"{_M}.deconvolution:Deconvolution",
    "integrated_gradients": f"{_M}.integrated_gradients:IntegratedGradients",
    "layer_integrated_gradients": f"{_M}.layer_integrated_gradients:LayerIntegratedGradients",
    "smoothgrad": f"{_M}.smoothgrad:SmoothGrad",
    "deeplift": f"{_M}.deeplift:DeepLift",
    "deeplift_shap": f"{_M}.deeplift_shap:DeepLiftShap",
    "gradient_shap": f"{_M}.gradient_shap:GradientShap",
    "guided_gradcam": f"{_M}.guided_gradcam:GuidedGradCam",
    # CAM family (pytorch-grad-cam)
    "gradcam": f"{_M}.gradcam:GradCAM",
    "hirescam": f"{_M}.hirescam:HiResCAM",
    "gradcam_elementwise": f"{_M}.gradcam_elementwise:GradCAMElementWise",
    "gradcam_plusplus": f"{_M}.gradcam_plusplus:GradCAMPlusPlus",
    "xgradcam": f"{_M}.xgradcam:XGradCAM",
    "ablationcam": f"{_M}.ablationcam:AblationCAM",
    "scorecam": f"{_M}.scorecam:ScoreCAM",
    "eigencam": f"{_M}.eigencam:EigenCAM",
    "eigengradcam": f"{_M}.eigengradcam:EigenGradCAM",
    "layercam": f"{_M}.layercam:LayerCAM",
    "fullgrad": f"{_M}.fullgrad:FullGrad",
    # perturbation family
    "occlusion": f"{_M}.occlusion:Occlusion",
    "feature_ablation": f"{_M}.feature_ablation:FeatureAblation",
    "lime": f"{_M}.lime:Lime",
    "shap": f"{_M}.shap:KernelShap",
    "shapley_sampling": f"{_M}.shapley_sampling:ShapleySampling",
    "meaningful_perturbation": f"{_M}.meaningful_perturbation:MeaningfulPerturbation",
    "prediction_difference": f"{_M}.prediction_difference:PredictionDifference",
    "rise": f"{_M}.rise:Rise",
    # relevance propagation (zennit)
    "lrp": f"{_M}.lrp:LRP",
}


def method_names() -> list[str]:
    return sorted(METHODS)


def get_method(name: str) -> type[Explainer]:
    if name not in METHODS:
        raise ExplainerConfigError(f"unknown explanation method {name!r}; known: {', '.join(method_names())}")
    module_name, cls_name = METHODS[name].split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ExplainerConfigError(f"method {name!r} is unavailable: cannot import {module_name} ({err})") from err
    return getattr(module, cls_name)


def make_explainer(name: str, model: nn.Module, **params: Any) -> Explainer:
    """Build the named method for `model`; keyword parameters as in Explainer.__init__."""
    return get_method(name)(model, **params)
