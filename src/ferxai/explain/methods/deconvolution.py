"""Deconvolution (Zeiler & Fergus 2014): ReLUs pass back only positive *upstream* gradients."""

from __future__ import annotations

from captum.attr import Deconvolution as _CaptumDeconvolution

from ferxai.explain.methods.guided_backprop import GuidedBackprop


class Deconvolution(GuidedBackprop):
    """Guided backprop's set-up (surgery-prepared copy, nn.ReLU modules required) with the
    deconvnet ReLU rule: gradients are gated by their own sign, not by the forward activation."""

    name = "deconvolution"
    captum_class = _CaptumDeconvolution
