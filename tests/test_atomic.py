"""Atomic writes: readers see the old file or the new one; killed writes leave nothing for long."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ferxai.atomic import remove_leftovers, write_atomic, write_bytes_atomic, write_text_atomic


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_write_creates_folders_replaces_and_leaves_only_the_file(tmp_path):
    path = tmp_path / "a" / "b" / "out.json"
    assert write_text_atomic(path, "première") == path
    assert path.read_text(encoding="utf-8") == "première"
    write_bytes_atomic(path, b"\x00second")
    assert path.read_bytes() == b"\x00second"
    write_atomic(path, lambda fh: (fh.write(b"third, "), fh.write(b"in two calls")))
    assert path.read_bytes() == b"third, in two calls"
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.json"]


def test_file_mode_follows_the_umask_like_a_plain_open(tmp_path):
    plain = tmp_path / "plain"
    plain.write_bytes(b"x")
    atomic = write_bytes_atomic(tmp_path / "atomic", b"x")
    assert atomic.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777 == 0o666 & ~_umask()


def test_failed_write_keeps_the_previous_file_and_no_temporary(tmp_path):
    path = write_bytes_atomic(tmp_path / "out.bin", b"old")

    def interrupted(fh):
        fh.write(b"half of the new")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(path, interrupted)
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_sigkilled_write_leaves_the_old_file_and_the_next_write_cleans_up(tmp_path):
    path = write_bytes_atomic(tmp_path / "state.pt", b"old")
    killer = ("import os, signal, sys\n"
              "from ferxai.atomic import write_atomic\n"
              "def die(fh):\n"
              "    fh.write(b'half'); fh.flush()\n"
              "    os.kill(os.getpid(), signal.SIGKILL)\n"
              "write_atomic(sys.argv[1], die)\n")
    proc = subprocess.run([sys.executable, "-c", killer, str(path)], capture_output=True)
    assert proc.returncode == -9, proc.stderr
    assert path.read_bytes() == b"old"
    left = [p.name for p in tmp_path.iterdir() if p.name != "state.pt"]
    assert len(left) == 1 and left[0].startswith(".state.pt.") and left[0].endswith(".tmp")

    write_bytes_atomic(tmp_path / "other.pt", b"x")  # another file's write keeps state.pt's leftover
    assert (tmp_path / left[0]).exists()
    write_bytes_atomic(path, b"new", clean_leftovers=False)
    assert (tmp_path / left[0]).exists()
    write_bytes_atomic(path, b"newer")
    assert path.read_bytes() == b"newer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.pt", "state.pt"]


def test_remove_leftovers_matches_only_that_files_temporaries(tmp_path):
    names = [".x[1].npz.ab12.tmp", ".x[1].npz.tmp", "x[1].npz.tmp", ".x1.npz.ab12.tmp", ".y.npz.cd34.tmp"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    remove_leftovers(tmp_path / "x[1].npz")  # glob characters in the name are taken literally
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[1:])


def test_import_is_standard_library_only():
    code = "import sys, ferxai.atomic; print(sorted(m for m in ('numpy', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
