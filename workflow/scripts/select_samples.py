"""Rule select_samples: which test images to explain (per-class confidence sets or all, or the
images the experiment named by compare_to explains)."""

from ferxai.explain.collect import write_samples
from ferxai.runlog import log_to_file

with log_to_file(snakemake.log[0]):
    write_samples(snakemake.input.predictions, snakemake.output[0], snakemake.params.selection,
                  like=snakemake.input.get("like"))
