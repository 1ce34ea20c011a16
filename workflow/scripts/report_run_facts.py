"""Rule report_run_facts: commit, config, packages, device and wall time per rule of the run."""

from ferxai.report.facts import facts_page
from ferxai.runlog import log_to_file

with log_to_file(snakemake.log[0]):
    facts_page(snakemake.output[0], snakemake.params.config, snakemake.params.commit, snakemake.params.train_logs,
               snakemake.params.benchmarks, snakemake.params.patterns,
               dict(zip(snakemake.params.experiments, snakemake.input.summaries)), snakemake.params.not_scored)
