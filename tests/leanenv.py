"""A throw-away virtualenv that holds what `make run` installs (`pip install -e '.[workflow]'`) and
nothing else, built from the test environment's own installed files.

The test environment has every extra (the SLURM executor plugin, DVC, moto...). Snakemake imports
every installed executor plugin when it starts, and the SLURM plugin imports pandas: a bug that
only shows without pandas in the process (as in make run's environment) stays hidden there. This
view links exactly the distributions in the dependency closure of ``ferxai[workflow]``: each one's
top-level packages and modules (from its RECORD) and its .dist-info, plus a .pth for ``src/``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def requirement_closure(root: str = "ferxai",
                        extras: tuple[str, ...] = ("workflow",)) -> dict[str, metadata.Distribution]:
    """Installed distributions ``root[extras]`` needs, by canonical name, markers evaluated here.

    A requirement whose distribution is not installed is skipped: pip would have installed it, but
    the test environment cannot conjure it, and the closure is then only smaller than make run's.
    """
    found: dict[str, metadata.Distribution] = {}
    extras_done: dict[str, set[str]] = defaultdict(set)
    todo = [(root, set(extras))]
    while todo:
        name, wanted = todo.pop()
        key = canonicalize_name(name)
        if key in found and wanted <= extras_done[key]:
            continue
        try:
            dist = found.get(key) or metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        found[key] = dist
        extras_done[key] |= wanted
        environments = [{"extra": extra} for extra in sorted(extras_done[key])] + [{"extra": ""}]
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or any(req.marker.evaluate(env) for env in environments):
                todo.append((req.name, set(req.extras)))
    return found


def _top_levels(dist: metadata.Distribution) -> dict[str, list[Path]]:
    """Top-level names a distribution installs into site-packages -> its files under each."""
    tops: dict[str, list[Path]] = defaultdict(list)
    for file in dist.files or []:
        parts = Path(file).parts
        if not parts or parts[0] in ("..", "__pycache__") or parts[0].endswith(".dist-info"):
            continue  # scripts in bin/, bytecode caches, the metadata (linked whole)
        tops[parts[0]].append(Path(file))
    if not dist.files:
        for name in (dist.read_text("top_level.txt") or "").split():
            tops[name] = []
    return tops


def _dist_info(dist: metadata.Distribution) -> Path | None:
    path = getattr(dist, "_path", None)
    return Path(path) if path is not None and Path(path).is_dir() else None


def build(dest: Path, src: Path) -> Path:
    """Create the lean virtualenv at ``dest`` with ``src`` on its path; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(dest)], check=True)
    python = dest / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    closure = requirement_closure()
    ferxai = closure.pop("ferxai")  # the library comes from src/ (below), not from its editable install
    keep = set(closure)

    # Who installs each top-level name, across every installed distribution: a name shared with
    # one outside the closure (a namespace package) is linked file by file, not as a whole.
    owners: dict[str, set[str]] = defaultdict(set)
    for dist in metadata.distributions():
        for top in _top_levels(dist):
            owners[top].add(canonicalize_name(dist.metadata["Name"] or ""))

    for key, dist in closure.items():
        base = Path(dist.locate_file(""))
        for top, files in _top_levels(dist).items():
            target = site / top
            if owners[top] <= keep:
                if not target.exists() and (base / top).exists():
                    target.symlink_to(base / top)
                continue
            for file in files:
                link = site / file
                if not link.exists() and (base / file).exists():
                    link.parent.mkdir(parents=True, exist_ok=True)
                    link.symlink_to(base / file)
        info = _dist_info(dist)
        if info is not None and not (site / info.name).exists():
            (site / info.name).symlink_to(info)
    info = _dist_info(ferxai)
    if info is not None:
        # Metadata only (importlib.metadata.version("ferxai")); its editable finder is left out.
        (site / info.name).symlink_to(info)
    (site / "ferxai-src.pth").write_text(os.fspath(src) + "\n")
    return python


def environment(python: Path) -> dict[str, str]:
    """Process environment of a shell in the lean virtualenv: its bin/ first, no PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["VIRTUAL_ENV"] = os.fspath(python.parent.parent)
    env["PATH"] = os.pathsep.join([os.fspath(python.parent), "/usr/local/bin", "/usr/bin", "/bin"])
    return env
