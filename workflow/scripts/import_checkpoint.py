"""Rule import_checkpoint: wrap a user's state dict into a ferxai checkpoint (bring-your-own)."""

import json

from ferxai.models import import_user_checkpoint
from ferxai.runlog import log_to_file

with log_to_file(snakemake.log[0]):
    with open(snakemake.input.classes) as fh:
        classes = json.load(fh)
    import_user_checkpoint(snakemake.input.checkpoint, snakemake.output[0], snakemake.params.model, classes)
