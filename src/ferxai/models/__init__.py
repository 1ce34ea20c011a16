"""Architectures (`build_model`) and checkpoint files (`save_checkpoint`, `load_checkpoint`).

The names below are imported on first access: ``ferxai.models.catalog`` must stay importable
without torch (config validation uses it), and importing a submodule runs this file first.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    **{name: "ferxai.models.checkpoint" for name in (
        "CheckpointError", "checkpoint_meta", "library_versions", "load_checkpoint",
        "import_user_checkpoint", "load_user_checkpoint", "save_checkpoint", "strip_wrapper_prefixes",
    )},
    **{name: "ferxai.models.zoo" for name in (
        "ARCHITECTURES", "FerCNN", "InputNormalization", "ModelConfigError", "PretrainedWeightsError",
        "build_model", "default_normalization", "default_target_layer", "model_normalization",
        "model_options",
    )},
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:
    from ferxai.models.checkpoint import (  # noqa: F401
        CheckpointError,
        checkpoint_meta,
        import_user_checkpoint,
        library_versions,
        load_checkpoint,
        load_user_checkpoint,
        save_checkpoint,
        strip_wrapper_prefixes,
    )
    from ferxai.models.zoo import (  # noqa: F401
        ARCHITECTURES,
        FerCNN,
        InputNormalization,
        ModelConfigError,
        PretrainedWeightsError,
        build_model,
        default_normalization,
        default_target_layer,
        model_normalization,
        model_options,
    )
