"""Rule runs_table: results/runs.csv and runs_scores.csv from every experiment's record."""

from ferxai.records import read_record, write_runs
from ferxai.runlog import log_to_file

with log_to_file(snakemake.log[0]):
    write_runs([read_record(path) for path in snakemake.input], snakemake.output.runs, snakemake.output.scores)
