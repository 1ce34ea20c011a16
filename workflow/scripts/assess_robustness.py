"""Rule assess_robustness: each noise condition's maps against the first condition's, per method."""

from ferxai.assess.collect import write_robustness
from ferxai.runlog import log_to_file

with log_to_file(snakemake.log[0]):
    reference = dict(zip(snakemake.params.methods, snakemake.input.reference))
    noisy = [(c, m, f) for (c, m), f in zip(snakemake.params.pairs, snakemake.input.noisy)]
    write_robustness(snakemake.input.inputs, reference, noisy, snakemake.params.robustness["top_k"],
                     snakemake.params.root)
