"""Rule overlays: one overlay PNG per image and a gallery per selection set for one method."""

from ferxai.explain.pictures import write_method_pictures
from ferxai.runlog import log_to_file

with log_to_file(snakemake.log[0]):
    write_method_pictures(snakemake.input.inputs, snakemake.input.attributions, snakemake.wildcards.method,
                          snakemake.params.overlay, snakemake.output.overlays, snakemake.output.gallery)
