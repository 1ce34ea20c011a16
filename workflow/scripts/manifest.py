"""Rule manifest: run the dataset's adapter and write manifest, rejects and class list."""

import json

from ferxai.data.adapters import run_manifest
from ferxai.runlog import log_to_file

with log_to_file(snakemake.log.log):
    result, frame = run_manifest(
        snakemake.params.format, dict(snakemake.params.options),
        manifest_path=snakemake.output.manifest, rejects_path=snakemake.output.rejects,
        max_reject_fraction=snakemake.params.max_reject_fraction, kept_rejects_path=snakemake.log.rejects,
    )
    with open(snakemake.output.classes, "w") as fh:
        json.dump(list(result.classes), fh, indent=1)
