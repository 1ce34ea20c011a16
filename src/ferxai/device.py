"""Device choice and mixed precision, in one place so training and evaluation agree.

Mixed precision is CUDA-only and uses float16 with a GradScaler: float16 autocast runs on every
CUDA GPU (bfloat16 needs Ampere or newer), and the scaler guards its narrow range. On CPU all
helpers are no-ops, so CPU results do not depend on the `amp` setting.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

import torch

_CUDA_SPEC = re.compile(r"^cuda(?::(\d+))?$")


def resolve_device(spec: str = "auto") -> torch.device:
    """Map a config device string to a ``torch.device``.

    "auto" is CUDA when available, else CPU (MPS is never picked: op coverage and determinism
    differ). "cpu" always works. "cuda" / "cuda:N" fail with a clear error when that GPU is absent,
    rather than silently training on CPU for hours.
    """
    spec = str(spec).strip().lower()
    if spec == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    match = _CUDA_SPEC.match(spec)
    if match is None:
        raise ValueError(f"device {spec!r} is not one of: auto, cpu, cuda, cuda:N")
    if not torch.cuda.is_available():
        raise RuntimeError(
            f"device {spec!r} was requested but CUDA is not available on this machine "
            f"(torch {torch.__version__}); use device: auto or cpu"
        )
    if match.group(1) is not None:
        index = int(match.group(1))
        count = torch.cuda.device_count()
        if index >= count:
            raise RuntimeError(f"device {spec!r} was requested but only {count} CUDA device(s) are visible")
        return torch.device("cuda", index)
    return torch.device("cuda")


def amp_enabled(device: torch.device, enabled: bool = True) -> bool:
    """Whether mixed precision is actually used: requested *and* on CUDA."""
    return bool(enabled) and torch.device(device).type == "cuda"


def autocast_for(device: torch.device, enabled: bool = True) -> contextlib.AbstractContextManager[Any]:
    """float16 autocast on CUDA when `enabled`; a no-op context everywhere else."""
    if amp_enabled(device, enabled):
        return torch.autocast(device_type="cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def make_grad_scaler(device: torch.device, enabled: bool = True) -> torch.amp.GradScaler:
    """A loss scaler for float16 training on CUDA; a disabled (pass-through) one otherwise.

    The disabled scaler keeps the training loop identical on every device:
    ``scaler.scale(loss).backward(); scaler.step(opt); scaler.update()``.
    """
    if amp_enabled(device, enabled):
        return torch.amp.GradScaler("cuda")
    return torch.amp.GradScaler("cpu", enabled=False)


def is_cuda_oom(exc: BaseException) -> bool:
    """True for a CUDA out-of-memory error (typed, or the RuntimeError older code paths raise)."""
    oom_types = tuple(
        t for t in (getattr(torch.cuda, "OutOfMemoryError", None), getattr(torch, "OutOfMemoryError", None))
        if isinstance(t, type)
    )
    if oom_types and isinstance(exc, oom_types):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
