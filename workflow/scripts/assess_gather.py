"""Rule assess_gather: the faithfulness and sensitivity shard tables as per-image files."""

from ferxai.assess.collect import gather_shard_scores
from ferxai.assess.files import shard_scores_file
from ferxai.runlog import log_to_file

with log_to_file(snakemake.log[0]):
    root, shards = snakemake.params.root, snakemake.params.shards
    for family, labels in snakemake.params.families.items():
        tables = {(c, m): [shard_scores_file(root, c, m, family, k) for k in range(shards)]
                  for c, m in map(tuple, snakemake.params.pairs)}
        gather_shard_scores(tables, labels, root, snakemake.input.inputs)
