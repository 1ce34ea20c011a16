"""Rule assess_mask_zoom: one image's maps, whole and zoomed on its ground-truth mask."""

from ferxai.assess.collect import write_mask_zoom
from ferxai.runlog import log_to_file

with log_to_file(snakemake.log[0]):
    write_mask_zoom(snakemake.input.inputs, dict(zip(snakemake.params.methods, snakemake.input.attributions)),
                    snakemake.params.root, snakemake.params.condition, snakemake.params.metrics,
                    snakemake.params.overlay, snakemake.output[0])
