"""Rule method_agreement: every pair of methods' maps of the same images, compared."""

from ferxai.assess.files import read_table
from ferxai.assess.method_agreement import write_method_agreement
from ferxai.plots.assess import plot_method_agreement
from ferxai.plots.evaluation import save_figure
from ferxai.runlog import log_to_file

with log_to_file(snakemake.log[0]):
    maps = [(c, m, path) for (c, m), path in zip(snakemake.params.pairs, snakemake.input.attributions)]
    write_method_agreement(snakemake.input.inputs, maps, snakemake.params.agreement["top_k"],
                           snakemake.output.table, snakemake.params.intervals)
    kind = "each method on its own model" if snakemake.params.decorrelated else "all methods on one model"
    save_figure(plot_method_agreement(read_table(snakemake.output.table),
                                      f"{snakemake.wildcards.experiment}: methods against methods, {kind}"),
                snakemake.output.figure)
