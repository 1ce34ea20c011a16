"""Rule evaluate: predictions and metrics of one experiment's model on the test split."""

import torch

from ferxai.evaluate import evaluate_checkpoint
from ferxai.runlog import log_to_file

with log_to_file(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    evaluate_checkpoint(
        snakemake.input.model, snakemake.input.test, snakemake.params.settings,
        summary_path=snakemake.output.summary, confusion_path=snakemake.output.confusion,
        predictions_path=snakemake.output.predictions,
    )
