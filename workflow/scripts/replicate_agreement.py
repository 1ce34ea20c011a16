"""Rule replicate_agreement: every replicate's agreement with the first, pooled, and their accuracies."""

from ferxai.assess.agreement import write_replicate_agreement
from ferxai.assess.files import read_table
from ferxai.plots.assess import plot_agreement
from ferxai.plots.evaluation import save_figure
from ferxai.runlog import log_to_file

with log_to_file(snakemake.log[0]):
    base, *others = snakemake.params.replicates
    write_replicate_agreement(
        base, snakemake.params.seeds, dict(zip(snakemake.params.replicates, snakemake.input.test)),
        snakemake.params.roots, snakemake.params.pairs, snakemake.params.intervals,
        snakemake.output.summary, snakemake.output.accuracy, snakemake.params.training_data)
    disjoint = snakemake.params.training_data[base] != "all"
    save_figure(plot_agreement(read_table(snakemake.output.summary),
                               f"{len(others) + 1} replicates of {base} (seeds differ"
                               + (", each on its own part of the training data)" if disjoint else ")"),
                               "agreement with the first replicate's maps"),
                snakemake.output.figure)
