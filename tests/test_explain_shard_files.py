"""Shard files: round trips, gathering in selection order, and the errors that name a shard."""

import json
import subprocess
import sys

import numpy as np
import pytest

from ferxai.explain.shard_files import ShardError, gather_shards, load_shard, load_shard_arrays, save_shard
from ferxai.explain.shards import shard_ranges


def _write_shards(tmp_path, n=10, count=3, skip=(), **meta):
    """Shards as the attribution jobs cut them: 10 images in 3 give images 0..3, 4..6, 7..9."""
    maps = np.arange(n * 3 * 2, dtype=np.float32).reshape(n, 3, 2)
    ids = [f"dir/{i}.png" for i in range(n)]
    paths = []
    for k, (start, stop) in enumerate(shard_ranges(n, count)):
        if k in skip:
            continue
        p = tmp_path / f"shard-{k}.npz"
        save_shard(p, maps[start:stop], ids[start:stop],
                   {"start": start, "total": n, "shard": k, "shard_count": count, "method": "m",
                    "condition": "clean", "seconds": 1.0 + k, **meta},
                   arrays={"targets": np.arange(start, stop) % 3})
        paths.append(p)
    return paths, maps, ids


def test_shard_round_trip_and_gather(tmp_path):
    paths, maps, ids = _write_shards(tmp_path)
    got_maps, got_ids, meta = load_shard(paths[1])
    assert np.array_equal(got_maps, maps[4:7]) and got_ids == ids[4:7]
    assert meta["start"] == 4 and meta["stop"] == 7 and meta["total"] == 10
    # given in any order
    all_maps, all_ids, meta = gather_shards(list(reversed(paths)), expected_ids=ids)
    assert np.array_equal(all_maps, maps) and all_ids == ids
    assert meta["method"] == "m" and meta["num_shards"] == 3
    assert "seconds" not in meta and [s["seconds"] for s in meta["shards"]] == [1.0, 2.0, 3.0]
    assert "start" not in meta
    # the gathered result is itself a shard file (start 0)
    out = tmp_path / "attributions.npz"
    save_shard(out, all_maps, all_ids, {**meta, "start": 0, "total": len(all_ids)})
    again, again_ids, _ = gather_shards([out])
    assert np.array_equal(again, maps) and again_ids == ids
    assert json.loads(json.dumps(meta))  # plain JSON
    # extra per-image arrays travel with the shards
    assert load_shard_arrays(paths[1])["targets"].tolist() == [1, 2, 0]
    *_, arrays = gather_shards(paths, with_arrays=True)
    assert arrays["targets"].tolist() == (np.arange(10) % 3).tolist()
    with pytest.raises(ValueError, match="one row per image"):
        save_shard(tmp_path / "bad.npz", maps[:2], ids[:2], {"start": 0, "total": 2}, arrays={"t": [1]})


def test_gather_names_the_missing_shard(tmp_path):
    paths, _, _ = _write_shards(tmp_path, skip=(1,))
    with pytest.raises(ShardError, match=r"missing shard-1 \(images 4..6\)"):
        gather_shards(paths)
    paths, _, _ = _write_shards(tmp_path / "tail", skip=(2,))
    with pytest.raises(ShardError, match=r"missing shard-2 \(images 7..9\)"):
        gather_shards(paths)


def test_gather_errors(tmp_path):
    paths, _, ids = _write_shards(tmp_path)
    with pytest.raises(ShardError, match="overlap"):
        gather_shards(paths + [paths[0]])
    with pytest.raises(ShardError, match="image 0"):
        gather_shards(paths, expected_ids=["other"] + ids[1:])
    other, _, _ = _write_shards(tmp_path / "b", method="other")
    with pytest.raises(ShardError, match="disagree on 'method'"):
        gather_shards(paths[:2] + other[2:])
    with pytest.raises(ShardError, match="no shard files"):
        gather_shards([])
    with pytest.raises(ValueError, match="misses"):
        save_shard(tmp_path / "x.npz", np.zeros((1, 2, 2)), ["a"], {"total": 1})
    with pytest.raises(ValueError, match="does not fit"):
        save_shard(tmp_path / "x.npz", np.zeros((2, 2, 2)), ["a", "b"], {"start": 0, "total": 1})


def test_empty_selection_shard(tmp_path):
    p = tmp_path / "shard-0.npz"
    save_shard(p, np.zeros((0, 4, 4)), [], {"start": 0, "total": 0})
    maps, ids, _ = gather_shards([p])
    assert maps.shape == (0, 4, 4) and ids == []


def test_save_is_atomic_and_keeps_the_name_given(tmp_path, monkeypatch):
    path = tmp_path / "out" / "shard-0"  # no ".npz": np.savez on a path would have added one
    save_shard(path, np.ones((2, 3, 3)), ["a", "b"], {"start": 0, "total": 2})
    assert sorted(p.name for p in path.parent.iterdir()) == ["shard-0"]
    assert load_shard(path)[1] == ["a", "b"]

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", killed)
    with pytest.raises(KeyboardInterrupt):
        save_shard(path, np.zeros((1, 3, 3)), ["c"], {"start": 0, "total": 1})
    maps, ids, _ = load_shard(path)  # the previous shard, whole
    assert ids == ["a", "b"] and np.array_equal(maps, np.ones((2, 3, 3)))
    assert sorted(p.name for p in path.parent.iterdir()) == ["shard-0"]


HEAVY = ("zarr", "torch", "pandas", "matplotlib")


def _heavy_after(code: str) -> list[str]:
    probe = code + f"\nimport json, sys; print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_shard_files_and_mean_images_import_neither_zarr_nor_torch():
    assert _heavy_after("import ferxai.explain.shard_files, ferxai.explain.mean_images") == []


def test_gather_step_runs_without_zarr_or_torch(tmp_path):
    """The gather job, run as the workflow runs it (a fresh process), on real shard files."""
    paths, maps, ids = _write_shards(tmp_path)
    np.savez(tmp_path / "inputs.npz", ids=np.array(ids))
    out = tmp_path / "attributions.npz"
    heavy = _heavy_after("from ferxai.explain.collect import gather\n"
                         f"gather({[str(p) for p in paths]!r}, {str(tmp_path / 'inputs.npz')!r}, {str(out)!r})")
    assert "zarr" not in heavy and "torch" not in heavy, heavy
    got, got_ids, meta = load_shard(out)
    assert np.array_equal(got, maps) and got_ids == ids and meta["num_shards"] == 3


def test_more_shards_than_images_gather_with_their_empty_shards(tmp_path):
    paths, maps, ids = _write_shards(tmp_path, n=2, count=4)
    assert [load_shard(p)[0].shape[0] for p in paths] == [1, 1, 0, 0]
    all_maps, all_ids, meta = gather_shards(paths, expected_ids=ids)
    assert np.array_equal(all_maps, maps) and all_ids == ids and meta["num_shards"] == 4
