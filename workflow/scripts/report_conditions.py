"""Rule report_conditions: one explained image under every noise condition, every method's map."""

from ferxai.explain.pictures import write_condition_grid
from ferxai.runlog import log_to_file

with log_to_file(snakemake.log[0]):
    write_condition_grid(snakemake.input.inputs, dict(zip(map(tuple, snakemake.params.pairs),
                                                          snakemake.input.attributions)),
                         snakemake.params.conditions, snakemake.params.methods, snakemake.params.overlay,
                         snakemake.params.seed, snakemake.output[0])
