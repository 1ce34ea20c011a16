"""Rule manifest: run the dataset's adapter and write manifest, rejects and class list."""

import json
import logging
from collections import Counter

from ferxai.data.adapters import build_manifest
from ferxai.data.manifest import write_manifest
from ferxai.runlog import log_to_file

with log_to_file(snakemake.log[0]):
    result = build_manifest(snakemake.params.format, dict(snakemake.params.options))
    if result.rejects:
        # Snakemake removes a failed job's outputs, so the log keeps the reasons too.
        logging.warning("%d inputs rejected:\n%s", len(result.rejects),
                        "\n".join(f"{r['source']}\t{r['row']}\t{r['reason']}" for r in result.rejects))
    if result.dropped:
        # Dropped by design (e.g. FER+ rows where "unknown" wins), not errors: counted, not budgeted.
        logging.info("dropped %d inputs: %s", len(result.dropped),
                     dict(Counter(d["reason"] for d in result.dropped)))
    frame = write_manifest(result, snakemake.output.manifest, snakemake.output.rejects,
                           snakemake.params.max_reject_fraction)
    with open(snakemake.output.classes, "w") as fh:
        json.dump(list(result.classes), fh, indent=1)
    logging.info("manifest: %d images in %d classes", len(frame), len(result.classes))
