"""Logging for pipeline steps: everything a step prints, warns or raises ends up in one log file."""

from __future__ import annotations

import contextlib
import logging
import sys
import traceback
from pathlib import Path
from typing import Iterator, TextIO

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def log_to_file(path: str | Path) -> Iterator[TextIO]:
    """Send logging, stdout and stderr (tqdm bars, warnings) to `path` for the duration.

    An exception is written to the log with its traceback and then re-raised, so the step
    fails visibly and the log explains why.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", buffering=1) as stream:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root = logging.getLogger()
        old_level = root.level
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        logging.captureWarnings(True)
        try:
            with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
                yield stream
        except BaseException as exc:
            stream.write("".join(traceback.format_exception(exc)))
            # Also on the real stderr: Snakemake shows it next to the failed job.
            print(f"{type(exc).__name__}: {exc}", file=sys.__stderr__)
            raise
        finally:
            logging.captureWarnings(False)
            root.removeHandler(handler)
            root.setLevel(old_level)
