# ferxai: dataset manifest -> splits -> training -> evaluation -> attributions, as file targets.
# All logic lives in the ferxai library (src/ferxai); rules only wire files together.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/explain.smk"
include: "workflow/rules/assess.smk"
include: "workflow/rules/records.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        all_targets(),
    default_target: True
