"""Rule splits: stratified (subject-disjoint where subjects are known) train/val/test."""

import logging
from pathlib import Path

from ferxai.data.manifest import read_manifest
from ferxai.data.splits import make_splits, write_splits
from ferxai.runlog import log_to_file

with log_to_file(snakemake.log[0]):
    result = make_splits(read_manifest(snakemake.input.manifest), **snakemake.params.settings)
    write_splits(result, Path(snakemake.output.train).parent)
    logging.info("split sizes:\n%s", result.summary.to_string())
