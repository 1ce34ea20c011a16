"""Rule report_experiment: per-class scores, resolved training settings, explanation methods' status,
how far each explanation metric can be trusted."""

from ferxai.report.experiment import write_experiment_report
from ferxai.runlog import log_to_file

with log_to_file(snakemake.log[0]):
    methods, conditions = snakemake.params.methods, snakemake.params.conditions
    pairs = [(c, m) for c in conditions for m in methods]
    write_experiment_report(
        snakemake.wildcards.experiment, snakemake.input.summary, snakemake.params.settings, methods, conditions,
        dict(zip(methods, snakemake.input.preflight)), dict(zip(pairs, snakemake.input.attributions)),
        snakemake.input.scores[0] if snakemake.input.scores else None, snakemake.params.not_scored,
        snakemake.output.per_class, snakemake.output.settings, snakemake.output.methods,
        snakemake.input.reliability[0] if snakemake.input.reliability else None, snakemake.output.reliability)
