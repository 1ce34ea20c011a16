"""GPU slot assignment with fake device counts: concurrent jobs must get distinct devices, and each
user's jobs lock in a folder of their own."""

import multiprocessing as mp
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from ferxai.explain.devices import LOCK_DIR_ENV, LockDirError, default_lock_dir, gpu_slot, visible_devices


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


OTHER_UID = 65534  # "nobody": a second user on the same machine, when the tests run as root


def hold_until_released(lock_dir, count, ready, release):
    with gpu_slot(device_count=count, lock_dir=lock_dir, timeout=30, poll=0.05) as dev:
        ready.put(dev)
        release.wait(30)


@pytest.fixture
def both_gpus_held():
    """Start two jobs that hold both GPUs of a 2-GPU machine in `lock_dir` until the test ends."""
    ctx = mp.get_context("fork")
    release = ctx.Event()
    procs = []

    def hold_all(lock_dir):
        ready = ctx.Queue()
        new = [ctx.Process(target=hold_until_released, args=(lock_dir, 2, ready, release)) for _ in range(2)]
        procs.extend(new)
        for p in new:
            p.start()
        assert sorted(ready.get(timeout=30) for _ in new) == ["0", "1"]

    yield hold_all
    release.set()
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0


def as_other_user(fn, *args):
    """fn(*args) in a forked process running as another uid; (result, error repr)."""
    ctx = mp.get_context("fork")
    queue = ctx.Queue()

    def child():
        os.setgroups([])
        os.setgid(OTHER_UID)
        os.setuid(OTHER_UID)
        try:
            queue.put((fn(*args), None))
        except Exception as exc:  # noqa: BLE001 - handed to the test to assert on
            queue.put((None, f"{type(exc).__name__}: {exc}"))

    proc = ctx.Process(target=child)
    proc.start()
    got = queue.get(timeout=30)
    proc.join(timeout=30)
    return got


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="switching to another uid needs root")


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv(LOCK_DIR_ENV, raising=False)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)


@pytest.fixture
def shared_tmp(monkeypatch):
    """A world-writable sticky temp dir like /tmp (pytest's tmp_path is private to this user)."""
    path = Path(tempfile.mkdtemp(prefix="ferxai-test-locks-"))
    path.chmod(0o1777)
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_default_lock_dir_is_private_per_user_and_not_in_home(clean_env, tmp_path, monkeypatch):
    assert Path.home() not in default_lock_dir().parents
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    mine = tmp_path / f"ferxai-{os.getuid()}" / "gpu-locks"
    assert default_lock_dir() == mine
    with gpu_slot(device_count=2, timeout=0) as dev:
        assert dev == "0" and (mine / "gpu0.lock").is_file()
    assert (mine.parent.stat().st_mode & 0o777, mine.stat().st_mode & 0o777) == (0o700, 0o700)

    runtime = tmp_path / "run-user"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    assert default_lock_dir() == runtime / "ferxai" / "gpu-locks"
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "logged-out"))  # gone: the temp dir again
    assert default_lock_dir() == mine
    monkeypatch.setenv(LOCK_DIR_ENV, str(tmp_path / "chosen"))
    assert default_lock_dir() == tmp_path / "chosen"


def test_two_lock_roots_do_not_collide(clean_env, tmp_path, monkeypatch, both_gpus_held):
    user_a, user_b = tmp_path / "a", tmp_path / "b"
    both_gpus_held(user_a)
    with pytest.raises(TimeoutError, match="no free GPU"):
        with gpu_slot(device_count=2, lock_dir=user_a, timeout=0):
            pass
    with gpu_slot(device_count=2, lock_dir=user_b, timeout=0) as dev:
        assert dev == "0"
    monkeypatch.setenv(LOCK_DIR_ENV, str(user_a))  # the variable chooses the folder as well
    with pytest.raises(TimeoutError):
        with gpu_slot(device_count=2, timeout=0):
            pass
    monkeypatch.setenv(LOCK_DIR_ENV, str(user_b))
    with gpu_slot(device_count=2, timeout=0) as dev:
        assert dev == "0"


def _take_default_slot():
    with gpu_slot(device_count=2, timeout=0) as dev:
        return dev, str(default_lock_dir())


@needs_root
def test_second_user_gets_own_locks_while_first_holds_every_gpu(clean_env, shared_tmp, both_gpus_held):
    both_gpus_held(None)  # root's jobs, in root's default folder
    got, error = as_other_user(_take_default_slot)
    assert error is None
    assert got == ("0", str(shared_tmp / f"ferxai-{OTHER_UID}" / "gpu-locks"))


def test_unwritable_lock_dir_is_a_clear_error(clean_env, shared_tmp):
    locked = shared_tmp / "not-yours"
    locked.mkdir(mode=0o755)

    def take():
        with gpu_slot(device_count=2, lock_dir=locked, timeout=0):
            pass

    if os.geteuid() == 0:  # root may write anywhere: ask another user
        _, error = as_other_user(take)
    else:
        locked.chmod(0o555)
        with pytest.raises(LockDirError) as info:
            take()
        error = f"LockDirError: {info.value}"
    assert error.startswith("LockDirError") and str(locked) in error and LOCK_DIR_ENV in error


def test_per_user_temp_folder_taken_by_someone_else_is_refused(clean_env, shared_tmp, tmp_path):
    private = shared_tmp / f"ferxai-{os.getuid()}"
    private.symlink_to(tmp_path, target_is_directory=True)  # planted before our first job
    with pytest.raises(LockDirError, match="link"):
        with gpu_slot(device_count=2, timeout=0):
            pass
    assert not list(tmp_path.iterdir())
    if os.geteuid() == 0:
        private.unlink()
        private.mkdir(mode=0o777)
        os.chown(private, OTHER_UID, OTHER_UID)
        with pytest.raises(LockDirError, match=f"belongs to uid {OTHER_UID}"):
            with gpu_slot(device_count=2, timeout=0):
                pass
