"""Dataset adapters: each reads one on-disk format and returns an AdapterResult (one manifest).

``ADAPTERS`` maps a config ``format`` to ``"module:function"``; modules are imported only when
their format is used, so one broken or absent adapter cannot stop the others.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ferxai.data.manifest import AdapterResult, ManifestError

ADAPTERS: dict[str, str] = {
    "synthetic": "ferxai.data.adapters.synthetic:read_synthetic",
    "folder": "ferxai.data.adapters.folder:read_folder",
    "images": "ferxai.data.adapters.images:read_images",
    "fer2013_csv": "ferxai.data.adapters.fer2013_csv:read_fer2013_csv",
    "ferplus": "ferxai.data.adapters.ferplus:read_ferplus",
    "npz": "ferxai.data.adapters.npz:read_npz",
    "csv": "ferxai.data.adapters.csv_manifest:read_csv",
}

# Split names accepted in folder layouts and user manifests (case-insensitive) -> manifest value.
SPLIT_ALIASES: dict[str, str] = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validation": "val",
    "test": "test", "testing": "test",
}


def normalise_split(value: str) -> str | None:
    """Manifest split name for a folder or column value; "" for blank, None when unknown."""
    value = value.strip()
    if not value:
        return ""
    return SPLIT_ALIASES.get(value.lower())


def class_option(classes: object, fmt: str) -> list[str] | None:
    """A ``classes`` option as a list of distinct names (None stays None), or ManifestError."""
    if classes is None:
        return None
    if isinstance(classes, (str, bytes)) or not isinstance(classes, Sequence):
        raise ManifestError(f"{fmt} dataset: option 'classes' must be a list of names, got {classes!r}")
    names = [str(c) for c in classes]
    if not names or len(set(names)) != len(names):
        raise ManifestError(f"{fmt} dataset: option 'classes' must be distinct names, got {names}")
    return names


def get_adapter(fmt: str) -> Callable[..., AdapterResult]:
    """The adapter function of ``fmt``; ManifestError names an unknown or unimportable format."""
    if fmt not in ADAPTERS:
        raise ManifestError(f"unknown dataset format {fmt!r}; known formats: {', '.join(sorted(ADAPTERS))}")
    module_name, func_name = ADAPTERS[fmt].split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ManifestError(f"dataset format {fmt!r} is unavailable: cannot import {module_name} ({err})") from err
    return getattr(module, func_name)


def adapter_options(fmt: str) -> tuple[list[str], list[str]]:
    """(required, optional) option names of ``fmt``'s adapter, read from its signature."""
    params = inspect.signature(get_adapter(fmt)).parameters.values()
    named = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    required = [p.name for p in named if p.default is p.empty]
    optional = [p.name for p in named if p.default is not p.empty]
    return required, optional


def check_options(fmt: str, options: Mapping[str, Any] | None) -> None:
    """ManifestError naming unknown or missing options of ``fmt``'s adapter; reads no data."""
    required, optional = adapter_options(fmt)
    options = dict(options or {})
    unknown = sorted(set(options) - set(required) - set(optional))
    if unknown:
        raise ManifestError(f"dataset format {fmt!r}: unknown option(s) {unknown}; "
                            f"valid options: {', '.join(required + optional)}")
    missing = [name for name in required if name not in options]
    if missing:
        raise ManifestError(f"dataset format {fmt!r}: missing required option(s) {missing}")


def build_manifest(fmt: str, options: Mapping[str, Any] | None) -> AdapterResult:
    """Check ``options`` against ``fmt``'s adapter, then run it.

    Unknown and missing options are reported before any file is read, with the valid names.
    """
    options = dict(options or {})
    check_options(fmt, options)
    return get_adapter(fmt)(**options)


__all__ = ["ADAPTERS", "SPLIT_ALIASES", "adapter_options", "build_manifest", "check_options", "class_option", "get_adapter",
           "normalise_split"]
