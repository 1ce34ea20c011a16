"""Rule report_dataset: class counts per split, a sample grid per class and the data findings."""

from ferxai.report.data import write_dataset_report
from ferxai.runlog import log_to_file

with log_to_file(snakemake.log[0]):
    files = {key: snakemake.input[key] for key in ("manifest", "classes", "summary", "rejects", "duplicates",
                                                   "label_conflicts", "subject_leaks")}
    write_dataset_report(files, snakemake.wildcards.dataset, snakemake.params.per_class,
                         snakemake.output.counts, snakemake.output.samples, snakemake.output.findings)
