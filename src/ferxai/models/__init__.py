"""Architectures (`build_model`) and checkpoint files (`save_checkpoint`, `load_checkpoint`)."""

from ferxai.models.checkpoint import (
    CheckpointError,
    checkpoint_meta,
    library_versions,
    load_checkpoint,
    import_user_checkpoint,
    load_user_checkpoint,
    save_checkpoint,
    strip_wrapper_prefixes,
)
from ferxai.models.zoo import (
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

__all__ = [
    "ARCHITECTURES",
    "CheckpointError",
    "FerCNN",
    "InputNormalization",
    "ModelConfigError",
    "PretrainedWeightsError",
    "build_model",
    "checkpoint_meta",
    "default_normalization",
    "default_target_layer",
    "library_versions",
    "load_checkpoint",
    "import_user_checkpoint",
    "load_user_checkpoint",
    "model_normalization",
    "model_options",
    "save_checkpoint",
    "strip_wrapper_prefixes",
]
