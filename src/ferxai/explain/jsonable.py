"""Plain-JSON copies of metadata, shared by the shard files and the zarr store (numpy-only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def jsonable(value: Any) -> Any:
    """Round-trip through JSON so attrs and meta hold only plain types (numpy scalars allowed in)."""
    def default(obj: Any) -> Any:
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
        if isinstance(obj, Path):
            return str(obj)
        if isinstance(obj, (set, frozenset)):
            return sorted(obj)
        raise TypeError(f"{type(obj).__name__} is not JSON serialisable: {obj!r}")
    return json.loads(json.dumps(value, default=default))
