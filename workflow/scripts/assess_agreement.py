"""Rule assess_agreement: each method's maps against those of the experiment named by compare_to."""

from ferxai.assess.agreement import write_agreement
from ferxai.assess.files import read_table
from ferxai.plots.assess import plot_agreement
from ferxai.plots.evaluation import save_figure
from ferxai.runlog import log_to_file

with log_to_file(snakemake.log[0]):
    pairs = [(c, m, own, other) for (c, m), own, other in
             zip(snakemake.params.pairs, snakemake.input.attributions, snakemake.input.reference_attributions)]
    write_agreement(snakemake.input.inputs, snakemake.input.reference_inputs, pairs,
                    snakemake.params.agreement["top_k"], snakemake.params.root,
                    snakemake.output.summary, snakemake.params.intervals)
    save_figure(plot_agreement(read_table(snakemake.output.summary),
                               f"{snakemake.wildcards.experiment}'s maps against {snakemake.params.compare_to}'s",
                               "similarity of the two models' maps"),
                snakemake.output.figure)
