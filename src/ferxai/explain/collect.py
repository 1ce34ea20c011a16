"""The torch-free steps of the explanation stage: selection, gathering shards, the zarr store.

Kept apart from `ferxai.explain.pipeline` because each workflow job is a fresh process and these
small steps would otherwise spend most of their time importing torch.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from ferxai.explain.shard_files import gather_shards, load_shard, save_shard
from ferxai.explain.store import create_store, write_attributions

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


def write_samples(predictions_csv: str | Path, out_csv: str | Path, selection: Mapping[str, Any],
                  like: str | Path | None = None) -> pd.DataFrame:
    """The images to explain, chosen by `selection` (ExplainSettings.selection()) from the
    predictions, or, with `like` (another experiment's samples.csv), the images listed there."""
    # Imported here: the gather jobs import this module for the other steps and need no tables.
    import pandas as pd

    from ferxai.explain.selection import samples_like, select_samples

    predictions = pd.read_csv(predictions_csv, dtype={"id": str}, keep_default_na=False)
    if like:
        reference = pd.read_csv(like, dtype={"id": str, "set": str}, keep_default_na=False)
        samples = samples_like(predictions, reference, where=str(like))
    else:
        samples = select_samples(predictions, **dict(selection))
    samples.to_csv(out_csv, index=False)
    log.info("selected %d images: %s", len(samples), samples["set"].value_counts().to_dict())
    return samples


def load_inputs(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def gather(shards: Sequence[str | Path], inputs_npz: str | Path, out_npz: str | Path) -> None:
    """One method's shards in selection order; fails naming a missing or inconsistent shard."""
    ids = load_inputs(inputs_npz)["ids"].tolist()
    maps, got_ids, meta, arrays = gather_shards(shards, expected_ids=ids, with_arrays=True)
    keep = {k: v for k, v in meta.items() if k not in ("shards", "start", "stop", "failed")}
    failed = next((s["failed"] for s in meta["shards"] if s.get("failed")), None)
    if failed:
        # one failed shard fails the method: its maps are not all there
        maps = np.full_like(maps, np.nan)
        keep["failed"] = failed
    save_shard(out_npz, maps, got_ids, {**keep, "start": 0, "total": len(got_ids)}, arrays=arrays)


def write_store(inputs_npz: str | Path, gathered: Sequence[tuple[str, str, str | Path]], out_dir: str | Path) -> None:
    """The experiment's zarr store: inputs, predictions, masks, mean images and every method's maps."""
    inputs = load_inputs(inputs_npz)
    create_store(out_dir, images=inputs["images"], labels=inputs["labels"], predictions=inputs["predictions"],
                 probabilities=inputs["probabilities"], ids=inputs["ids"].tolist(), sets=inputs["sets"].tolist(),
                 class_names=inputs["class_names"].tolist(), mean_image=inputs["mean_image"],
                 class_means=inputs["class_means"], masks=inputs.get("masks"), has_mask=inputs.get("has_mask"))
    for condition, label, path in gathered:
        maps, _, meta = load_shard(path)
        write_attributions(out_dir, condition, label, maps, attrs={k: meta[k] for k in (
            "method", "params", "signed", "library", "family", "output", "seed", "model", "failed") if k in meta})
