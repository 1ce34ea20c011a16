"""Rule attribute: one method's attributions for one shard under one noise condition."""

import torch

from ferxai.explain.pipeline import write_shard
from ferxai.runlog import log_to_file

with log_to_file(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    write_shard(snakemake.input.model, snakemake.input.inputs, snakemake.input.preflight,
                snakemake.params.method, snakemake.params.settings, snakemake.wildcards.condition,
                int(snakemake.wildcards.shard), snakemake.output[0])
