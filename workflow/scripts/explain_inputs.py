"""Rule explain_inputs: the selected images, their predictions and dataset references in one file."""

from ferxai.explain.pipeline import write_inputs
from ferxai.runlog import log_to_file

with log_to_file(snakemake.log[0]):
    write_inputs(snakemake.input.samples, snakemake.input.model, snakemake.input.test,
                 snakemake.input.train, snakemake.output[0])
