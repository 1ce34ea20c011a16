"""Rule preflight: measure one method's fastest batch size within the memory budget."""

import torch

from ferxai.explain.pipeline import write_preflight
from ferxai.runlog import log_to_file

with log_to_file(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    write_preflight(snakemake.input.model, snakemake.input.inputs, snakemake.params.method,
                    snakemake.params.settings, snakemake.output[0])
