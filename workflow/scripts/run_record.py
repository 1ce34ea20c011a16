"""Rule run_record: one experiment's run record (results/runs/<experiment>.json)."""

from ferxai.records import record_experiment
from ferxai.runlog import log_to_file

with log_to_file(snakemake.log[0]):
    record_experiment(snakemake.wildcards.experiment, snakemake.params.config, dict(snakemake.input.items()),
                      snakemake.output[0], snakemake.scriptdir)
