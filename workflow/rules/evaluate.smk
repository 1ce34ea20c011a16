rule evaluate:
    input:
        model=model_checkpoint,
        test=lambda wc: f"{data_dir(wc)}/splits/test.csv",
    output:
        summary="results/{experiment}/eval/test_summary.json",
        confusion="results/{experiment}/eval/confusion_matrix.csv",
        predictions="results/{experiment}/eval/predictions.csv",
    params:
        code=job_code("evaluate.py", model=True),
        settings=EVALUATE.to_dict(),
    log:
        "logs/{experiment}/evaluate.log",
    benchmark:
        "benchmarks/{experiment}/evaluate.tsv"
    threads: rule_resource("evaluate", "threads", 2)
    resources:
        gpu=rule_resource("evaluate", "gpu", 1),
        mem_mb=rule_resource("evaluate", "mem_mb", 2000),
        runtime=rule_resource("evaluate", "runtime", 15),
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/evaluate.py"


rule plot_confusion_matrix:
    input:
        "results/{experiment}/eval/confusion_matrix.csv",
    output:
        counts=report(
            "results/{experiment}/eval/plots/confusion_matrix.png",
            caption="../report/confusion_matrix.rst",
            category="Evaluation",
            subcategory="{experiment}",
        ),
        normalized=report(
            "results/{experiment}/eval/plots/confusion_matrix_normalized.png",
            caption="../report/confusion_matrix.rst",
            category="Evaluation",
            subcategory="{experiment}",
        ),
    params:
        code=code_of("plot_confusion_matrix.py"),
    log:
        "logs/{experiment}/plot_confusion_matrix.log",
    benchmark:
        "benchmarks/{experiment}/plot_confusion_matrix.tsv"
    conda:
        "../../envs/plot.yaml"
    script:
        "../scripts/plot_confusion_matrix.py"


rule plot_training_curves:
    input:
        "results/{experiment}/model/train_log.jsonl",
    output:
        **{
            key: report(
                f"results/{{experiment}}/eval/plots/{key}.png",
                caption="../report/training_curves.rst",
                category="Training",
                subcategory="{experiment}",
            )
            for key in ("train_loss", "val_loss", "val_accuracy", "val_macro_f1")
        },
    params:
        code=code_of("plot_training_curves.py"),
    log:
        "logs/{experiment}/plot_training_curves.log",
    benchmark:
        "benchmarks/{experiment}/plot_training_curves.tsv"
    conda:
        "../../envs/plot.yaml"
    script:
        "../scripts/plot_training_curves.py"
