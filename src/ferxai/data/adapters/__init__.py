"""Dataset adapters: each reads one on-disk format and returns an AdapterResult (one manifest).

``ferxai.data.options.ADAPTERS`` maps a config ``format`` to ``"module:function"``; modules are
imported only when their format is used, so one broken or absent adapter cannot stop the others.
Their options are described there too, so the config check reads them without importing any
adapter.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from ferxai.classes import UNLABELLED
from ferxai.data.manifest import AdapterResult, ManifestError, write_manifest
from ferxai.data.options import ADAPTERS, OptionError, class_names, format_options
from ferxai.data.options import check_options as check_described


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
    try:
        return class_names(classes)
    except OptionError as err:
        raise ManifestError(f"{fmt} dataset: {err}") from None


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
    """(required, optional) option names of ``fmt``, from its description in ferxai.data.options."""
    described = _described(fmt)
    return [o.name for o in described if o.required], [o.name for o in described if not o.required]


def check_options(fmt: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """``options`` checked as the config check does (names, types, choices); reads no data.

    Returns them as the adapter's keyword arguments; ManifestError names the problem.
    """
    try:
        return check_described(fmt, options)
    except OptionError as err:
        raise ManifestError(f"{fmt} dataset: {err}" if err.value else str(err)) from None


def _described(fmt: str):
    try:
        return format_options(fmt)
    except OptionError as err:
        raise ManifestError(str(err)) from None


def build_manifest(fmt: str, options: Mapping[str, Any] | None) -> AdapterResult:
    """Check ``options`` against ``fmt``'s adapter, then run it.

    Unknown and missing options are reported before any file is read, with the valid names.
    """
    return get_adapter(fmt)(**check_options(fmt, options))


def run_manifest(fmt: str, options: Mapping[str, Any] | None, manifest_path: str | os.PathLike,
                 rejects_path: str | os.PathLike, max_reject_fraction: float,
                 kept_rejects_path: str | os.PathLike | None = None) -> tuple[AdapterResult, Any]:
    """The manifest stage: build, log what was left out and why, write (see write_manifest).

    Returns the adapter result and the manifest frame.
    """
    result = build_manifest(fmt, options)
    if result.rejects:
        logging.warning("%d inputs rejected:\n%s", len(result.rejects),
                        "\n".join(f"{r['source']}\t{r['row']}\t{r['reason']}" for r in result.rejects))
    if result.dropped:
        # Left out by design (FER+ rows where "unknown" wins, files that are not images): listed in
        # the rejects file with counted=False, never budgeted.
        reasons = dict(Counter(d["reason"] for d in result.dropped))
        logging.info("dropped %d inputs (listed in the rejects file, not counted against "
                     "max_reject_fraction): %s", len(result.dropped), reasons)
    frame = write_manifest(result, manifest_path, rejects_path, max_reject_fraction, kept_rejects_path)
    counts = Counter(int(label) for label in frame["label"])
    empty = [name for k, name in enumerate(result.classes) if not counts.get(k)]
    if empty and set(counts) != {UNLABELLED}:  # images without classes name the model's outputs
        logging.warning("%d of %d classes have no image: %s", len(empty), len(result.classes), empty)
    logging.info("manifest: %d images in %d classes", len(frame), len(result.classes))
    return result, frame


__all__ = ["ADAPTERS", "SPLIT_ALIASES", "adapter_options", "build_manifest", "check_options", "class_option",
           "get_adapter", "normalise_split", "run_manifest"]
