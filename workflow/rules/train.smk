rule train:
    input:
        train=lambda wc: f"{data_dir(wc)}/splits/train.csv",
        val=lambda wc: f"{data_dir(wc)}/splits/val.csv",
        classes=lambda wc: f"{data_dir(wc)}/classes.json",
    output:
        best="results/{experiment}/model/best.pt",
        last="results/{experiment}/model/last.pt",
        log="results/{experiment}/model/train_log.jsonl",
    params:
        code=job_code("train.py", model=True),
        settings=train_params,
    log:
        "logs/{experiment}/train.log",
    benchmark:
        "benchmarks/{experiment}/train.tsv"
    threads: rule_resource("train", "threads", 2)
    resources:
        gpu=rule_resource("train", "gpu", 1),
        mem_mb=rule_resource("train", "mem_mb", 4000),
        runtime=rule_resource("train", "runtime", 60),
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/train.py"


rule import_checkpoint:
    input:
        checkpoint=lambda wc: SETTINGS[wc.experiment]["model"]["checkpoint"],
        classes=lambda wc: f"{data_dir(wc)}/classes.json",
    output:
        "results/{experiment}/model/imported.pt",
    params:
        code=job_code("import_checkpoint.py", model=True),
        model=lambda wc: SETTINGS[wc.experiment]["model"],
    log:
        "logs/{experiment}/import_checkpoint.log",
    benchmark:
        "benchmarks/{experiment}/import_checkpoint.tsv"
    resources:
        mem_mb=rule_resource("train", "mem_mb", 4000),
        runtime=15,
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/import_checkpoint.py"
