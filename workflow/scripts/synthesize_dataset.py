"""Rule synthesize_dataset: generate the embedded synthetic FER dataset."""

from ferxai.data.synthetic import SyntheticConfig, generate
from ferxai.runlog import log_to_file

with log_to_file(snakemake.log[0]):
    generate(snakemake.output[0], SyntheticConfig.from_dict(snakemake.params.options))
