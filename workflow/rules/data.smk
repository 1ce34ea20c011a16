# Work that belongs to a dataset is done once per dataset, whatever experiments use it.


rule synthesize_dataset:
    output:
        directory("results/data/{dataset}/synthetic"),
    params:
        code=code_of("synthesize_dataset.py"),
        options=lambda wc: dataset_config(wc).get("options", {}),
    log:
        "logs/data/{dataset}/synthesize_dataset.log",
    benchmark:
        "benchmarks/data/{dataset}/synthesize_dataset.tsv"
    resources:
        mem_mb=rule_resource("data", "mem_mb", 2000),
        runtime=rule_resource("data", "runtime", 15),
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/synthesize_dataset.py"


rule manifest:
    input:
        unpack(manifest_inputs),
    output:
        manifest="results/data/{dataset}/manifest.csv",
        rejects="results/data/{dataset}/rejects.csv",
        classes="results/data/{dataset}/classes.json",
    params:
        code=job_code("manifest.py", adapter=True),
        format=lambda wc: dataset_config(wc)["format"],
        options=manifest_params,
        max_reject_fraction=lambda wc: dataset_config(wc)["max_reject_fraction"],
        fingerprint=source_fingerprint,
    log:
        log="logs/data/{dataset}/manifest.log",
        # Snakemake deletes a failed job's outputs, so the rejects a failure message points at
        # are kept here too.
        rejects="logs/data/{dataset}/rejects.csv",
    benchmark:
        "benchmarks/data/{dataset}/manifest.tsv"
    resources:
        mem_mb=rule_resource("data", "mem_mb", 2000),
        runtime=rule_resource("data", "runtime", 15),
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/manifest.py"


rule splits:
    input:
        manifest="results/data/{dataset}/manifest.csv",
    output:
        train="results/data/{dataset}/splits/train.csv",
        val="results/data/{dataset}/splits/val.csv",
        test="results/data/{dataset}/splits/test.csv",
        summary=report(
            "results/data/{dataset}/splits/summary.csv",
            caption="../report/splits.rst",
            category="Data",
            subcategory="{dataset}",
        ),
        duplicates="results/data/{dataset}/splits/duplicates.csv",
        label_conflicts="results/data/{dataset}/splits/label_conflicts.csv",
        subject_leaks="results/data/{dataset}/splits/subject_leaks.csv",
    params:
        code=code_of("splits.py"),
        settings=lambda wc: dataset_config(wc)["splits"],
    log:
        "logs/data/{dataset}/splits.log",
    benchmark:
        "benchmarks/data/{dataset}/splits.tsv"
    resources:
        mem_mb=rule_resource("data", "mem_mb", 2000),
        runtime=rule_resource("data", "runtime", 15),
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/splits.py"
