"""The manifest: one row per image, the same columns whatever format the images came from.

Every adapter returns an :class:`AdapterResult`; `write_manifest` writes it and enforces the
reject budget. Later stages only ever read the manifest, never the user's original layout.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

# pandas is imported inside the functions that use it: the workflow's config checks import this
# module while Snakemake builds its DAG, and pandas alone would add ~0.4 s to every `snakemake -n`.
if TYPE_CHECKING:
    import pandas as pd

# Column order of manifest.csv. `source` is either a file path or a reference into a container
# file ("<file>#row=<n>" for CSV pixel rows, "<file>#<array>[<n>]" for npz arrays), resolved by
# ferxai.data.images.load_image. `subject` and `source_split` are empty when unknown.
MANIFEST_COLUMNS: tuple[str, ...] = (
    "id", "source", "label", "label_name", "subject", "source_split",
    "width", "height", "channels", "content_hash",
)
# Optional extra columns an adapter may add (kept after the required ones).
OPTIONAL_COLUMNS: tuple[str, ...] = ("mask",)
# rejects.csv lists every input left out of the manifest. `counted` is True for rejects (unreadable
# or malformed inputs, which max_reject_fraction budgets) and False for inputs dropped by design.
REJECT_COLUMNS: tuple[str, ...] = ("source", "row", "reason", "counted")


class ManifestError(ValueError):
    """Bad input that stops the manifest stage; the message names the file, row or field."""


@dataclass
class AdapterResult:
    rows: list[dict] = field(default_factory=list)
    rejects: list[dict] = field(default_factory=list)  # {"source", "row", "reason"}
    classes: list[str] = field(default_factory=list)   # label index -> label_name
    # Inputs left out by design, not by error (e.g. FER+ rows where "unknown" wins, non-image
    # files in a folder): same keys as rejects, never counted against max_reject_fraction.
    dropped: list[dict] = field(default_factory=list)


def content_hash(pixels: np.ndarray) -> str:
    """Hash of decoded pixels (not file bytes), so re-encoded copies of one image collide."""
    arr = np.ascontiguousarray(pixels)
    h = hashlib.blake2b(digest_size=16)
    h.update(str(arr.shape).encode())
    h.update(arr.tobytes())
    return h.hexdigest()


def pixel_fields(pixels: np.ndarray) -> dict:
    """The manifest columns read off decoded pixels (H, W) or (H, W, C): size, channels, hash."""
    return {
        "width": int(pixels.shape[1]),
        "height": int(pixels.shape[0]),
        "channels": 1 if pixels.ndim == 2 else int(pixels.shape[2]),
        "content_hash": content_hash(pixels),
    }


def to_frame(result: AdapterResult) -> pd.DataFrame:
    import pandas as pd

    df = pd.DataFrame(result.rows)
    if df.empty:
        df = pd.DataFrame(columns=list(MANIFEST_COLUMNS))
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise ManifestError(f"adapter produced rows without columns {missing}")
    extra = [c for c in df.columns if c not in MANIFEST_COLUMNS]
    df = df[list(MANIFEST_COLUMNS) + extra]
    for col in ("subject", "source_split"):
        df[col] = df[col].fillna("").astype(str)
    return df


def rejects_frame(result: AdapterResult) -> pd.DataFrame:
    """Rejects then dropped inputs, one row each, with REJECT_COLUMNS."""
    import pandas as pd

    rows = ([{**r, "counted": True} for r in result.rejects]
            + [{**d, "counted": False} for d in result.dropped])
    return pd.DataFrame([{c: r.get(c, "") for c in REJECT_COLUMNS} for r in rows], columns=list(REJECT_COLUMNS))


def write_manifest(
    result: AdapterResult,
    manifest_path: str | Path,
    rejects_path: str | Path,
    max_reject_fraction: float,
    kept_rejects_path: str | Path | None = None,
) -> pd.DataFrame:
    """Write manifest and rejects; fail (after writing rejects) if too many inputs were rejected.

    Only rejects count against ``max_reject_fraction``, as a fraction of rejects plus manifest
    rows; dropped inputs are listed but not counted. ``kept_rejects_path`` gets a copy of the
    rejects that survives a failed job (Snakemake deletes a failed job's outputs but keeps its
    logs), and the error message names it.
    """
    frame = rejects_frame(result)
    for path in (rejects_path, kept_rejects_path):
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            frame.to_csv(path, index=False)
    shown = kept_rejects_path if kept_rejects_path is not None else rejects_path
    df = to_frame(result)
    n_rejects = len(result.rejects)
    total = len(df) + n_rejects
    if total == 0:
        dropped = f" ({len(result.dropped)} inputs dropped, see {shown})" if result.dropped else ""
        raise ManifestError(f"no images found{dropped}: check the dataset path and format in the config")
    fraction = n_rejects / total
    if fraction > max_reject_fraction:
        examples = "; ".join(f"{r['source']} (row {r['row']}): {r['reason']}" for r in result.rejects[:3])
        raise ManifestError(
            f"{n_rejects} of {total} inputs rejected ({fraction:.1%} > max_reject_fraction "
            f"{max_reject_fraction:.1%}); see {shown}. First: {examples}"
        )
    if df["id"].duplicated().any():
        dup = df.loc[df["id"].duplicated(), "id"].iloc[0]
        raise ManifestError(f"duplicate image id {dup!r} in manifest")
    manifest_path = Path(manifest_path)
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    if manifest_path.suffix == ".parquet":
        df.to_parquet(manifest_path, index=False)
    else:
        df.to_csv(manifest_path, index=False)
    return df


def read_manifest(path: str | Path) -> pd.DataFrame:
    import pandas as pd

    path = Path(path)
    if path.suffix == ".parquet":
        df = pd.read_parquet(path)
    else:
        df = pd.read_csv(path, dtype={"id": str, "subject": str, "source_split": str, "source": str},
                         keep_default_na=False)
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise ManifestError(f"{path}: not a ferxai manifest, missing columns {missing}")
    return df
