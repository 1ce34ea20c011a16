"""Rule track_mlflow: every experiment's run record logged to MLflow (tracking.mlflow_uri)."""

from ferxai.runlog import log_to_file
from ferxai.tracking import log_records_to

with log_to_file(snakemake.log[0]):
    log_records_to(snakemake.input.records, snakemake.params.tracking, snakemake.output[0])
