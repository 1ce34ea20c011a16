"""Rules assess_localisation, assess_complexity: one map-only metric family for every (condition,
method) of the experiment."""

from ferxai.assess.collect import write_map_scores
from ferxai.runlog import log_to_file

with log_to_file(snakemake.log[0]):
    pairs = [tuple(p) for p in snakemake.params.pairs]
    write_map_scores(snakemake.input.inputs, [(c, m, f) for (c, m), f in zip(pairs, snakemake.input.attributions)],
                     snakemake.params.metrics, snakemake.params.root)
