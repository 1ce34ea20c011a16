"""Rule assess_faithfulness: the model-running metrics of one shard of one method's maps under one
condition."""

import torch

from ferxai.assess.pipeline import write_faithfulness
from ferxai.runlog import log_to_file

with log_to_file(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    write_faithfulness(snakemake.input.model, snakemake.input.inputs, snakemake.input.shard,
                       snakemake.input.preflight, snakemake.params.metrics, snakemake.params.assess,
                       snakemake.params.explain, snakemake.wildcards.condition, snakemake.wildcards.method,
                       snakemake.params.root, snakemake.output[0])
