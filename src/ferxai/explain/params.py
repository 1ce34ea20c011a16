"""Checking a method's parameters by name and type, without torch (config validation runs this)."""

from __future__ import annotations

from typing import Any, Mapping


class ExplainerConfigError(ValueError):
    """Unknown method or bad parameter; the message names the method and the parameter."""


def check_method_params(method: str, defaults: Mapping[str, Any], params: Mapping[str, Any]) -> None:
    """Every key of `params` must be a parameter of `method`, of the type of its default."""
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ExplainerConfigError(
            f"method {method!r}: unknown parameter(s) {unknown}; valid: {', '.join(sorted(defaults)) or 'none'}"
        )
    for key, value in params.items():
        default = defaults[key]
        if default is None or value is None:
            continue
        if isinstance(default, float):
            expected: Any = (int, float)
        elif isinstance(default, (list, tuple)):
            expected = (list, tuple)
        else:
            expected = type(default)
        if isinstance(default, bool) != isinstance(value, bool) or not isinstance(value, expected):
            raise ExplainerConfigError(
                f"method {method!r}: parameter {key!r} must be {type(default).__name__} "
                f"like its default {default!r}, got {value!r}"
            )
