"""What configuration validation needs to know about methods and architectures, without torch.

Checking `explain.methods` and `models.*.options` needs each method's parameter defaults and each
architecture's options. Reading them means importing torch, captum, pytorch-grad-cam … (about 5 s),
and Snakemake validates the config on every invocation, dry runs included. So they are read once,
in a subprocess-free import, and cached in a JSON file keyed by the content of the source files
they come from: editing a method or the zoo refreshes the cache, nothing else does.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ferxai.atomic import write_text_atomic

PACKAGE = Path(__file__).resolve().parent
SOURCES = ("explain/registry.py", "explain/base.py", "explain/methods", "models/zoo.py")


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for rel in SOURCES:
        path = PACKAGE / rel
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for f in files:
            digest.update(str(f.relative_to(PACKAGE)).encode())
            digest.update(f.read_bytes())
    return digest.hexdigest()[:20]


def cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "ferxai"


def _collect() -> dict[str, Any]:
    from ferxai.explain.registry import METHODS, get_method
    from ferxai.models import ARCHITECTURES, model_options

    def plain(value: Any) -> Any:
        return list(value) if isinstance(value, tuple) else value

    methods = {}
    for name in METHODS:
        try:
            methods[name] = {"defaults": {k: plain(v) for k, v in get_method(name).defaults.items()}}
        except Exception as exc:  # noqa: BLE001 - a broken method is reported when it is configured
            methods[name] = {"error": str(exc)}
    models = {arch: {k: plain(v) for k, v in model_options(arch).items()} for arch in ARCHITECTURES}
    return {"methods": methods, "models": models}


def load_specs() -> dict[str, Any]:
    """{"methods": {name: {"defaults"|"error": ...}}, "models": {arch: options}}, cached."""
    path = cache_dir() / f"specs-{_fingerprint()}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    specs = _collect()
    try:
        # Several snakemake processes may fill the cache at once: another's temporary file may be
        # a live write, so leftovers are not cleaned here.
        write_text_atomic(path, json.dumps(specs), clean_leftovers=False)
    except OSError:
        pass  # a read-only home only costs the import time again
    return specs
