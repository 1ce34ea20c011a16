"""Rule assess_randomisation: the cascading model-randomisation sanity check of one method."""

import torch

from ferxai.assess.pipeline import write_randomisation
from ferxai.runlog import log_to_file

with log_to_file(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    write_randomisation(snakemake.input.model, snakemake.input.inputs, snakemake.input.preflight,
                        snakemake.params.method, snakemake.params.explain, snakemake.params.randomisation,
                        snakemake.params.condition, snakemake.wildcards.method, snakemake.output[0])
