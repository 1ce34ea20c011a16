"""What the Snakemake scheduler process imports, and what it leaves to the jobs.

Snakemake stores every job's params and, to recognise data frames among them, imports pandas
(also numpy and polars) whenever it is importable (`snakemake.iocontainers`' params store and
`snakemake.persistence`'s params hash, the one that reruns a method's jobs when its settings
change). With pyarrow installed, as here, that import is about 0.4 s of every `snakemake`
command: measured 1.56 s against 1.18 s for a no-op dry run of the default workflow, whose
target is 2 s (BENCHMARKS.md).

No rule of this workflow passes a data frame as a param, and the scheduler never uses pandas
itself: rules run their scripts in their own Python processes, which import pandas as usual. So
the Snakefile calls `hide_from_scheduler()` before anything else: in the scheduler process an
``import pandas`` raises ModuleNotFoundError and ``importlib.util.find_spec("pandas")`` returns
None, which both Snakemake code paths treat as "pandas is not installed" — the params hashes are
the same either way for the plain values this workflow passes. Child processes are unaffected:
`sys.modules` belongs to the process that changed it.

Left alone: a module something imported before the Snakefile was read (the SLURM executor
plugin imports pandas when Snakemake loads its plugins), since hiding it then would gain nothing.
Set ``FERXAI_SCHEDULER_IMPORTS=1`` to turn this off, e.g. for a rule of your own with a ``run:``
block that uses pandas in the scheduler process.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping

OPT_OUT = "FERXAI_SCHEDULER_IMPORTS"

# Modules the scheduler would import only because they are installed.
UNNEEDED = ("pandas",)


def hide_from_scheduler(modules: Iterable[str] = UNNEEDED, environ: Mapping[str, str] = os.environ) -> list[str]:
    """Make this process treat `modules` as not installed; return the names hidden.

    A module already imported is left as it is; with `OPT_OUT` set to anything but "" or "0"
    nothing is hidden."""
    if environ.get(OPT_OUT, "") not in ("", "0"):
        return []
    hidden = [name for name in modules if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # the import system's own marker for "import this and fail"
    return hidden


__all__ = ["OPT_OUT", "UNNEEDED", "hide_from_scheduler"]
