"""Rule assess_preflight: the model's fastest forward batch size for the faithfulness jobs."""

import torch

from ferxai.assess.pipeline import write_forward_preflight
from ferxai.runlog import log_to_file

with log_to_file(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    write_forward_preflight(snakemake.input.model, snakemake.input.inputs, snakemake.params.metrics,
                            snakemake.params.assess, snakemake.params.explain,
                            snakemake.output[0])
