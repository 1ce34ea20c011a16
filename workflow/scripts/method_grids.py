"""Rule method_grids: per image, the input next to every method's map (and the runner layout)."""

from ferxai.explain.pictures import write_method_grids
from ferxai.runlog import log_to_file

with log_to_file(snakemake.log[0]):
    write_method_grids(snakemake.input.inputs, dict(zip(snakemake.params.methods, snakemake.input.attributions)),
                       snakemake.params.overlay, snakemake.output[0], runner_layout=snakemake.params.runner_layout)
