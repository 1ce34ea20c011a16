"""Rule assess_sensitivity: the metrics that recompute one method's maps (max-sensitivity), for one
shard."""

import torch

from ferxai.assess.pipeline import write_sensitivity
from ferxai.runlog import log_to_file

with log_to_file(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    write_sensitivity(snakemake.input.model, snakemake.input.inputs, snakemake.input.shard,
                      snakemake.input.preflight, snakemake.params.method, snakemake.params.metrics,
                      snakemake.params.explain, snakemake.wildcards.condition, snakemake.wildcards.method,
                      snakemake.output[0])
