"""Rule preflight: measure one method's fastest batch size within the memory budget, then explain
shard 0 of the first condition with it."""

import torch

from ferxai.explain.pipeline import write_preflight_and_shard
from ferxai.runlog import log_to_file

with log_to_file(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    write_preflight_and_shard(snakemake.input.model, snakemake.input.inputs, snakemake.params.method,
                              snakemake.params.settings, snakemake.params.condition,
                              snakemake.output.preflight, snakemake.output.shard)
