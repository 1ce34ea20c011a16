"""Rule train: fit one experiment's model on its dataset's train split."""

import json

import torch

from ferxai.runlog import log_to_file
from ferxai.train import train_experiment

with log_to_file(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    with open(snakemake.input.classes) as fh:
        classes = json.load(fh)
    train_experiment(
        snakemake.input.train, snakemake.input.val, classes,
        snakemake.params.settings["model"], snakemake.params.settings["train"],
        best_path=snakemake.output.best, last_path=snakemake.output.last, log_path=snakemake.output.log,
    )
