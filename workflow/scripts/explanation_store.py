"""Rule explanation_store: the experiment's zarr store of images, predictions and all maps."""

from ferxai.explain.collect import write_store
from ferxai.runlog import log_to_file

with log_to_file(snakemake.log[0]):
    gathered = [(c, m, path) for (c, m), path in zip(snakemake.params.pairs, snakemake.input.attributions)]
    write_store(snakemake.input.inputs, gathered, snakemake.output[0])
