"""Checkpoint files: weights plus the metadata needed to rebuild the model, loaded safely.

A ferxai checkpoint is ``{"state_dict": {name: tensor}, "meta": {...}}`` holding only tensors
and plain Python values, so it loads with ``torch.load(..., weights_only=True)`` and never
executes code from the file. Files that would need full unpickling are refused, not loaded
with ``weights_only=False``: a checkpoint may come from anywhere (bring-your-own weights).
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import pickle
import platform
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ferxai import __version__ as FERXAI_VERSION
from ferxai.atomic import write_atomic
from ferxai.models.zoo import build_model, model_normalization

log = logging.getLogger(__name__)

# Keys `load_checkpoint` needs to rebuild the model; the rest of meta is provenance.
REQUIRED_META: tuple[str, ...] = ("arch", "num_classes", "classes", "in_channels", "input_size", "normalization")

# Wrapper prefixes that other training code leaves on parameter names:
# DataParallel/DistributedDataParallel ("module.") and torch.compile ("_orig_mod.").
_WRAPPER_PREFIXES: tuple[str, ...] = ("module.", "_orig_mod.")

# Shown whenever a file needs more than weights-only unpickling.
_STATE_DICT_HINT = (
    "Save the weights alone with `torch.save(model.state_dict(), path)` and use that file instead"
)


class CheckpointError(ValueError):
    """A checkpoint file is unsafe, unreadable or does not fit the model; the message says which."""


def library_versions() -> dict[str, str]:
    """Versions that decide whether saved weights rebuild into the same model."""
    return {
        # str(): torch.__version__ is a TorchVersion, which weights-only loading refuses.
        "torch": str(torch.__version__),
        # The installed distribution's version: importing torchvision for its __version__ would
        # cost every job that loads a fer_cnn (which needs no torchvision) its import.
        "torchvision": importlib.metadata.version("torchvision"),
        "ferxai": FERXAI_VERSION,
        "python": platform.python_version(),
    }


def checkpoint_meta(
    *,
    arch: str,
    classes: Sequence[str],
    in_channels: int,
    input_size: int,
    normalization: Mapping[str, Sequence[float]],
    model_options: Mapping[str, Any] | None = None,
    config_hash: str | None = None,
    pretrained: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """Checkpoint metadata with `num_classes` and library `versions` filled in.

    `extra` keys (epoch, metrics, ...) are kept as given; they must be plain Python values.
    """
    meta: dict[str, Any] = {
        "arch": arch,
        "num_classes": len(classes),
        "classes": [str(c) for c in classes],
        "in_channels": int(in_channels),
        "input_size": int(input_size),
        "normalization": {
            "mean": [float(v) for v in normalization["mean"]],
            "std": [float(v) for v in normalization["std"]],
        },
        "model_options": _plain(dict(model_options or {})),
        "config_hash": config_hash,
        "pretrained": bool(pretrained),
        "versions": library_versions(),
    }
    meta.update(extra)
    return meta


def _plain(value: Any) -> Any:
    # YAML and CLI code hand over tuples; lists are what the meta schema documents.
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _check_plain(value: Any, where: str) -> None:
    """Refuse values weights-only loading would reject, at save time instead of load time."""
    # Exact types: subclasses (numpy.float64, TorchVersion) pickle as their own class.
    if value is None or type(value) in (bool, int, float, str):
        return
    if type(value) in (list, tuple):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
        return
    if type(value) is dict:
        for k, v in value.items():
            if type(k) is not str:
                raise TypeError(f"checkpoint meta key {where}[{k!r}] must be a string")
            _check_plain(v, f"{where}.{k}")
        return
    raise TypeError(
        f"checkpoint meta value {where} is a {type(value).__name__}; only str, int, float, bool, "
        f"None, lists and dicts can be loaded safely (convert numpy scalars with float()/int())"
    )


def save_checkpoint(path: str | os.PathLike[str], model: nn.Module, meta: Mapping[str, Any]) -> Path:
    """Write ``{"state_dict", "meta"}`` to `path` atomically; returns the path.

    Written through `save_atomic`, so a job killed mid-write leaves the previous file (or none),
    never a truncated one.
    """
    path = Path(path)
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise ValueError(f"checkpoint meta for {path} lacks {missing}; build it with checkpoint_meta()")
    if len(meta["classes"]) != meta["num_classes"]:
        raise ValueError(
            f"checkpoint meta for {path}: {len(meta['classes'])} classes but num_classes={meta['num_classes']}"
        )
    meta = dict(meta)
    _check_plain(meta, "meta")
    # CPU copies, so the file loads on machines without the training device.
    state = {k: v.detach().to("cpu") for k, v in model.state_dict().items()}
    return save_atomic({"state_dict": state, "meta": meta}, path)


def _safe_load(path: Path, map_location: Any) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's message advises retrying with weights_only=False; a checkpoint may come from
        # anywhere, so only the refused object's name or the unpickler's own reason is quoted.
        msg = str(exc)
        found = re.search(r"Unsupported global: GLOBAL (\S+)|unsupported GLOBAL (\S+) whose module", msg)
        if found is None:
            # Not a pickle of disallowed classes: truncated, another format, or plain junk.
            detail = re.search(r"WeightsUnpickler error:\s*(.+)", msg)
            reason = detail.group(1).strip() if detail else _unpickler_reason(msg)
            raise CheckpointError(
                f"{path} is not a readable PyTorch checkpoint ({reason}). {_STATE_DICT_HINT}."
            ) from None
        refused = found.group(1) or found.group(2)
        raise CheckpointError(
            f"{path} contains pickled Python objects (it contains {refused}), e.g. a whole "
            f"saved nn.Module, which ferxai does not unpickle because that can run arbitrary code. "
            f"{_STATE_DICT_HINT}."
        ) from None
    except (RuntimeError, KeyError, EOFError, ValueError, OSError) as exc:
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint ({type(exc).__name__}: {exc})"
        ) from None


def _unpickler_reason(message: str) -> str:
    """The line of torch's weights-only error that says what was refused, without its advice."""
    advice = ("weights_only", "Weights only load failed", "Check the documentation")
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    reasons = [line for line in lines if not any(a in line for a in advice)]
    return reasons[-1] if reasons else "refused by torch's weights-only unpickler"


def _summary(keys: Sequence[str], n: int = 5) -> str:
    head = ", ".join(keys[:n])
    return head + (f", ... ({len(keys)} in all)" if len(keys) > n else "")


def _load_weights(model: nn.Module, state: Mapping[str, torch.Tensor], path: Path, arch: str) -> None:
    """Load `state` into `model`, or raise a CheckpointError that says what does not fit."""
    own = model.state_dict()
    mismatched = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own if k in state and state[k].shape != own[k].shape
    ]
    if mismatched:
        hint = ""
        if any(k.split(":")[0].endswith(("fc.weight", "classifier.weight", "head.weight")) for k in mismatched):
            hint += " The classifier size differs: do `classes` match the classes the weights were trained on?"
        if any(k.split(":")[0] in ("conv1.weight", "features.conv0.weight") for k in mismatched):
            hint += (" The first conv differs: check `channels`, and set model option `small_stem` to match "
                     "the stem the weights were trained with (3x3 stride-1 for small_stem: true).")
        raise CheckpointError(
            f"{path} does not fit arch {arch!r}: shape mismatch in {_summary(mismatched, 3)}.{hint}"
        )
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        parts = []
        if result.missing_keys:
            parts.append(f"missing keys: {_summary(result.missing_keys)}")
        if result.unexpected_keys:
            parts.append(f"unexpected keys: {_summary(result.unexpected_keys)}")
        raise CheckpointError(
            f"{path} does not fit arch {arch!r} ({'; '.join(parts)}). Is it a state dict of a "
            f"{arch} built with the same options?"
        )


def _warn_on_version_drift(path: Path, meta: Mapping[str, Any]) -> None:
    saved = meta.get("versions") or {}
    now = library_versions()
    for lib in ("torch", "torchvision"):
        old = str(saved.get(lib, ""))
        if old and old.split(".")[:2] != now[lib].split(".")[:2]:
            log.warning("%s was saved with %s %s, running %s; layer definitions may differ",
                        path, lib, old, now[lib])


def _to_device(model: nn.Module, map_location: Any) -> nn.Module:
    if isinstance(map_location, (str, torch.device)):
        model.to(map_location)
    return model


def load_checkpoint(
    path: str | os.PathLike[str], map_location: Any = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model saved by :func:`save_checkpoint`; returns ``(model in eval mode, meta)``."""
    path = Path(path)
    obj = _safe_load(path, map_location)
    if not (isinstance(obj, Mapping) and "state_dict" in obj and "meta" in obj):
        raise CheckpointError(
            f"{path} is not a ferxai checkpoint (no 'state_dict' + 'meta'); to use weights trained "
            f"elsewhere set `model.checkpoint` (loaded by load_user_checkpoint) and give the arch, "
            f"channels, input_size and normalization in the config"
        )
    meta = dict(obj["meta"])
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise CheckpointError(f"{path}: checkpoint meta lacks {missing}")
    _warn_on_version_drift(path, meta)
    # pretrained=False: the saved weights replace ImageNet ones, so never download.
    model = build_model(
        meta["arch"], int(meta["num_classes"]), int(meta["in_channels"]), int(meta["input_size"]),
        pretrained=False, normalization=meta["normalization"], **dict(meta.get("model_options") or {}),
    )
    _load_weights(model, obj["state_dict"], path, meta["arch"])
    return _to_device(model.eval(), map_location), meta


def _extract_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    elif isinstance(obj, Mapping) and isinstance(obj.get("model"), Mapping):
        obj = obj["model"]
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(
            f"{path} holds no state dict (expected a dict of tensors, or one under 'state_dict' or "
            f"'model'). {_STATE_DICT_HINT}."
        )
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(
            f"{path}: entries {_summary([str(k) for k in bad], 3)} are not tensors, so this is not a "
            f"state dict (top-level keys: {_summary([str(k) for k in obj], 8)}). {_STATE_DICT_HINT}."
        )
    return dict(obj)


def strip_wrapper_prefixes(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop a "module." / "_orig_mod." prefix that every key carries (DataParallel, torch.compile)."""
    state = dict(state)
    changed = True
    while changed:
        changed = False
        for prefix in _WRAPPER_PREFIXES:
            if state and all(k.startswith(prefix) for k in state):
                state = {k[len(prefix):]: v for k, v in state.items()}
                changed = True
    return state


def load_user_checkpoint(
    path: str | os.PathLike[str],
    arch: str,
    classes: Sequence[str],
    in_channels: int,
    input_size: int,
    normalization: Mapping[str, Sequence[float]] | None = None,
    model_options: Mapping[str, Any] | None = None,
    map_location: Any = "cpu",
) -> tuple[nn.Module, dict[str, Any]]:
    """Load bring-your-own weights for `arch`; returns ``(model in eval mode, meta)``.

    Accepts a plain state dict, ``{"state_dict": ...}`` or ``{"model": ...}``. `normalization`
    is what the weights were trained with; when omitted, the file's own ``input_norm`` buffers
    are used if present (a ferxai checkpoint), else the 0.5/0.5 default with a warning.
    """
    path = Path(path)
    state = strip_wrapper_prefixes(_extract_state_dict(_safe_load(path, "cpu"), path))
    norm_keys = ("input_norm.mean", "input_norm.std")
    if normalization is None:
        if all(k in state for k in norm_keys):
            normalization = {
                "mean": state["input_norm.mean"].flatten().tolist(),
                "std": state["input_norm.std"].flatten().tolist(),
            }
        else:
            log.warning("%s: no normalization given; assuming mean 0.5, std 0.5 per channel. "
                        "Set model.normalization to the statistics the weights were trained with.", path)
    options = dict(model_options or {})
    model = build_model(arch, len(classes), in_channels, input_size, pretrained=False,
                        normalization=normalization, **options)
    # Normalisation comes from the argument (or default) above, not from foreign weights.
    own = model.state_dict()
    for k in norm_keys:
        state[k] = own[k]
    _load_weights(model, state, path, arch)
    meta = checkpoint_meta(
        arch=arch, classes=classes, in_channels=in_channels, input_size=input_size,
        normalization=model_normalization(model), model_options=options, source=str(path),
    )
    return _to_device(model.eval(), map_location), meta


def import_user_checkpoint(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    model_settings: Mapping[str, Any],
    classes: Sequence[str],
) -> dict[str, Any]:
    """Turn a user's state dict (bring-your-own model) into a ferxai checkpoint at `destination`.

    The result loads with `load_checkpoint` like a model trained here, so every later stage
    works unchanged on a model trained elsewhere.
    """
    model, meta = load_user_checkpoint(
        source,
        arch=model_settings["arch"],
        classes=classes,
        in_channels=int(model_settings.get("channels", 1)),
        input_size=int(model_settings.get("input_size", 48)),
        normalization=model_settings.get("normalization"),
        model_options=model_settings.get("options") or {},
    )
    meta = {**meta, "imported_from": str(source)}
    save_checkpoint(destination, model, meta)
    return meta


def save_atomic(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save(obj)`` to `path` atomically (`ferxai.atomic.write_atomic`); returns the path.

    For files other than checkpoints (e.g. the training resume state): a process killed while
    writing leaves the previous file (or none), never a truncated one, and the next save of the
    same file removes what a SIGKILLed one left. `obj` should hold only tensors and plain
    containers so that :func:`load_weights_only` can read it back.
    """
    return write_atomic(path, lambda fh: torch.save(obj, fh))


def load_weights_only(path: str | os.PathLike[str], map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``; unreadable or unsafe files raise CheckpointError."""
    return _safe_load(Path(path), map_location)
