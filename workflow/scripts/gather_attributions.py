"""Rule gather_attributions: one method's shards, checked and concatenated in selection order."""

from ferxai.explain.collect import gather
from ferxai.runlog import log_to_file

with log_to_file(snakemake.log[0]):
    gather(snakemake.input.shards, snakemake.input.inputs, snakemake.output[0])
