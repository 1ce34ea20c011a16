"""The Snakemake scheduler process runs without pandas; the job scripts still have it."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from tinyflow import TINY, make_workdir

SRC = str(Path(REPO) / "src")


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter (this one has pandas imported already)."""
    environ = {k: v for k, v in os.environ.items() if k != "FERXAI_SCHEDULER_IMPORTS"}
    environ.update(env, PYTHONPATH=SRC)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ)


def test_hidden_pandas_reads_as_not_installed_to_snakemake_and_stays_importable_in_children():
    proc = _python(
        "import importlib.util, subprocess, sys\n"
        "from ferxai.scheduler import hide_from_scheduler\n"
        "assert hide_from_scheduler() == ['pandas']\n"
        "assert importlib.util.find_spec('pandas') is None  # snakemake.persistence's test\n"
        "try:\n"
        "    import pandas\n"
        "except ModuleNotFoundError:\n"  # snakemake.iocontainers' test
        "    pass\n"
        "else:\n"
        "    raise SystemExit('pandas imported')\n"
        "from snakemake.iocontainers import Params  # the modules that probe for pandas load without it\n"
        "from snakemake.jobs import Job\n"
        "child = subprocess.run([sys.executable, '-c', 'import pandas; print(pandas.__name__)'],\n"
        "                       capture_output=True, text=True)\n"
        "assert child.stdout.strip() == 'pandas', child.stderr\n"
        "print('ok')\n"
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_already_imported_or_opted_out_modules_are_left_alone():
    proc = _python(
        "import pandas, json\n"
        "from ferxai.scheduler import hide_from_scheduler\n"
        "print(json.dumps(hide_from_scheduler(['pandas', 'xml.dom.minidom'])))\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == '["xml.dom.minidom"]'
    proc = _python(
        "import importlib.util\n"
        "from ferxai.scheduler import hide_from_scheduler\n"
        "assert hide_from_scheduler() == []\n"
        "assert importlib.util.find_spec('pandas') is not None\n",
        FERXAI_SCHEDULER_IMPORTS="1",
    )
    assert proc.returncode == 0, proc.stderr


# Snakemake imports every installed executor plugin at start, and the SLURM plugin (installed in
# the test environment, not in `make run`'s) imports pandas. Run the scheduler as in `make run`'s
# environment: without discovering that plugin.
_WITHOUT_SLURM_PLUGIN = (
    "import pkgutil, runpy, sys\n"
    "_iter = pkgutil.iter_modules\n"
    "pkgutil.iter_modules = lambda *a, **k: (m for m in _iter(*a, **k)\n"
    "                                        if not m.name.startswith('snakemake_executor_plugin_slurm'))\n"
    "sys.argv[0] = 'snakemake'\n"
    "runpy.run_module('snakemake', run_name='__main__', alter_sys=True)\n"
)


@pytest.mark.slow
def test_pipeline_runs_with_a_pandas_free_scheduler(tmp_path):
    """The whole tiny pipeline (manifest .. overlays, the checkpoint, the runtime resource from the
    preflight) runs with pandas hidden from the scheduler; its scripts use pandas as usual."""
    cfg = copy.deepcopy(TINY)
    cfg["explain"]["methods"] = {"saliency": {}}
    workdir = make_workdir(tmp_path / "wf", cfg)
    environ = {k: v for k, v in os.environ.items() if k != "FERXAI_SCHEDULER_IMPORTS"}
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", _WITHOUT_SLURM_PLUGIN, "--cores", "1"],
                          cwd=workdir, capture_output=True, text=True, env=environ)
    assert proc.returncode == 0, proc.stderr[-4000:]
    imported = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines()
                if line.startswith("import time:") and line.count("|") == 2}
    assert "snakemake.persistence" in imported  # the import log covers the scheduler's run
    # Snakemake still *tries* `import pandas` (the log lists the attempt, microseconds long);
    # a real import would load pandas' own modules.
    assert not {m for m in imported if m.startswith("pandas.")}
    # Params hash the same with pandas visible (as under the SLURM plugin): nothing to redo.
    recheck = subprocess.run([sys.executable, "-c", _WITHOUT_SLURM_PLUGIN, "-n", "--cores", "1"], cwd=workdir,
                             capture_output=True, text=True, env={**environ, "FERXAI_SCHEDULER_IMPORTS": "1"})
    assert recheck.returncode == 0 and "Nothing to be done" in recheck.stdout + recheck.stderr, recheck.stdout
    exp = workdir / "results" / "tiny_cnn" / "explain"
    assert (exp / "store.zarr").is_dir() and (exp / "preflight" / "saliency.json").is_file()
    assert list((exp / "clean" / "saliency" / "overlays").glob("*.png"))
