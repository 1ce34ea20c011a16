"""Rule gather_attributions: one method's shards, checked and concatenated in selection order,
then its overlay PNGs and gallery."""

from ferxai.explain.collect import gather
from ferxai.explain.pictures import write_method_pictures
from ferxai.runlog import log_to_file

with log_to_file(snakemake.log[0]):
    gather(snakemake.input.shards, snakemake.input.inputs, snakemake.output.attributions)
    write_method_pictures(snakemake.input.inputs, snakemake.output.attributions, snakemake.wildcards.method,
                          snakemake.params.overlay, snakemake.output.overlays, snakemake.output.gallery)
