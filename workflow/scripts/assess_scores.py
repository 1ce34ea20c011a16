"""Rule assess_scores: the experiment's scorecard (scores.csv, metric_reliability.csv, figures)."""

from ferxai.assess.collect import write_scores
from ferxai.runlog import log_to_file

with log_to_file(snakemake.log[0]):
    write_scores(snakemake.params.root, snakemake.params.methods, snakemake.params.conditions,
                 snakemake.params.metrics, snakemake.params.randomisation,
                 dict(zip(snakemake.params.methods, snakemake.input.preflight)),
                 dict(zip(map(tuple, snakemake.params.pairs), snakemake.input.attributions)), snakemake.params.intervals,
                 snakemake.output.scores, snakemake.output.reliability, snakemake.params.root,
                 snakemake.output.scores_json, snakemake.output.store, snakemake.output.summary)
