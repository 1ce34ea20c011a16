"""GPU slot assignment with fake device counts: concurrent jobs must get distinct devices."""

import multiprocessing as mp
import os
import time

from ferxai.explain.devices import gpu_slot, visible_devices


def hold(lock_dir, count, seconds, queue):
    with gpu_slot(device_count=count, lock_dir=lock_dir, timeout=30, poll=0.05) as dev:
        queue.put((dev, os.environ.get("CUDA_VISIBLE_DEVICES"), time.monotonic()))
        time.sleep(seconds)


def test_visible_devices_respects_scheduler_assignment(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    assert visible_devices(8) == ["2", "5"]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert visible_devices(3) == ["0", "1", "2"]
    assert visible_devices(0) == []


def test_no_gpu_and_single_gpu_take_no_lock(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with gpu_slot(device_count=0, lock_dir=tmp_path) as dev:
        assert dev is None
    with gpu_slot(device_count=1, lock_dir=tmp_path) as dev:
        assert dev == "0"
    assert not list(tmp_path.iterdir())


def test_concurrent_jobs_get_distinct_gpus_and_queue_when_all_busy(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=hold, args=(tmp_path, 2, 1.0, queue)) for _ in range(3)]
    start = time.monotonic()
    for p in procs:
        p.start()
    got = [queue.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    first_two = sorted(got, key=lambda g: g[2])[:2]
    assert {g[0] for g in first_two} == {"0", "1"}  # two jobs at once, on different GPUs
    assert all(g[0] == g[1] for g in got)           # CUDA_VISIBLE_DEVICES set to the held GPU
    third = sorted(got, key=lambda g: g[2])[2]
    assert third[2] - start >= 0.9                  # the third waited for a free GPU
