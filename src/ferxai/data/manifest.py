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
REJECT_COLUMNS: tuple[str, ...] = ("source", "row", "reason")


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


def write_manifest(
    result: AdapterResult,
    manifest_path: str | Path,
    rejects_path: str | Path,
    max_reject_fraction: float,
) -> pd.DataFrame:
    """Write manifest and rejects; fail (after writing rejects) if too many inputs were rejected."""
    import pandas as pd

    rejects = pd.DataFrame(result.rejects, columns=list(REJECT_COLUMNS))
    Path(rejects_path).parent.mkdir(parents=True, exist_ok=True)
    rejects.to_csv(rejects_path, index=False)
    df = to_frame(result)
    total = len(df) + len(rejects)
    if total == 0:
        raise ManifestError("no images found: check the dataset path and format in the config")
    fraction = len(rejects) / total
    if fraction > max_reject_fraction:
        examples = "; ".join(f"{r.source} (row {r.row}): {r.reason}" for r in rejects.head(3).itertuples())
        raise ManifestError(
            f"{len(rejects)} of {total} inputs rejected ({fraction:.1%} > max_reject_fraction "
            f"{max_reject_fraction:.1%}); see {rejects_path}. First: {examples}"
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
