"""Rule gather_attributions: every method's shards of one condition, checked and concatenated in
selection order, then each method's overlay PNGs and gallery."""

from ferxai.explain.pictures import gather_methods
from ferxai.runlog import log_to_file

with log_to_file(snakemake.log[0]):
    methods = snakemake.params.methods
    gather_methods(methods, [snakemake.input[f"shards_{i}"] for i in range(len(methods))], snakemake.input.inputs,
                   snakemake.output.attributions, snakemake.output.overlays, snakemake.output.galleries,
                   snakemake.params.overlay)
