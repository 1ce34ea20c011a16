"""Rule train: fit one experiment's model on its dataset's train split.

After each epoch the run's state goes to a hidden `.resume.pt` next to the checkpoints. It is not
an output on purpose: Snakemake deletes the outputs of an incomplete job before rerunning it, and
this file is what lets the rerun continue from the last finished epoch.
"""

import json
from pathlib import Path

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
        resume_path=Path(snakemake.output.last).with_name(".resume.pt"),
    )
