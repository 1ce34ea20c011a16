# The report's own items (`make report`, docs in README "The report"): what the other stages leave
# as tables and logs, drawn or written for a reader. Not part of the default target: `make run`
# does not pay for them. report/run_facts.html asks for them and for everything else, so
# `snakemake --report report.html report/run_facts.html` (make report) shows every stage's figures
# and these.
from ferxai.report import targets as report_files
from ferxai.report.facts import git_commit


rule report_dataset:
    input:
        manifest="results/data/{dataset}/manifest.csv",
        classes="results/data/{dataset}/classes.json",
        rejects="results/data/{dataset}/rejects.csv",
        summary="results/data/{dataset}/splits/summary.csv",
        duplicates="results/data/{dataset}/splits/duplicates.csv",
        label_conflicts="results/data/{dataset}/splits/label_conflicts.csv",
        subject_leaks="results/data/{dataset}/splits/subject_leaks.csv",
    output:
        counts=report(report_files.dataset_items("{dataset}")["counts"], caption="../report/class_counts.rst",
                      category="Data", subcategory="{dataset}"),
        samples=report(report_files.dataset_items("{dataset}")["samples"], caption="../report/samples.rst",
                       category="Data", subcategory="{dataset}"),
        findings=report(report_files.dataset_items("{dataset}")["findings"], caption="../report/findings.rst",
                        category="Data", subcategory="{dataset}"),
    params:
        code=code_of("report_dataset.py"),
        per_class=8,
    log:
        "logs/report/data/{dataset}.log",
    benchmark:
        "benchmarks/report/data/{dataset}.tsv"
    conda:
        "../../envs/plot.yaml"
    script:
        "../scripts/report_dataset.py"


rule report_experiment:
    input:
        summary="results/{experiment}/eval/test_summary.json",
        preflight=preflight_files,
        attributions=all_attribution_files,
        scores=lambda wc: [] if report_files.not_scored(config, wc.experiment) else [f"{assess_root(wc)}/scores.csv"],
        reliability=lambda wc: [] if report_files.not_scored(config, wc.experiment) else [
            f"{assess_root(wc)}/metric_reliability.csv"],
    output:
        per_class=report(report_files.experiment_items("{experiment}")["per_class"],
                         caption="../report/per_class.rst", category="Evaluation", subcategory="{experiment}"),
        settings=report(report_files.experiment_items("{experiment}")["settings"],
                        caption="../report/training_settings.rst", category="Training", subcategory="{experiment}"),
        methods=report(report_files.experiment_items("{experiment}")["methods"],
                       caption="../report/methods.rst", category="Explanation quality", subcategory="{experiment}"),
        reliability=report(report_files.experiment_items("{experiment}")["reliability"],
                           caption="../report/metric_reliability.rst", category="Explanation quality",
                           subcategory="{experiment}"),
    params:
        code=code_of("report_experiment.py"),
        settings=lambda wc: SETTINGS[wc.experiment],
        methods=lambda wc: EXPLAIN_METHODS,
        conditions=CONDITIONS,
        not_scored=lambda wc: report_files.not_scored(config, wc.experiment),
    log:
        "logs/report/{experiment}.log",
    benchmark:
        "benchmarks/report/{experiment}.tsv"
    conda:
        "../../envs/explain.yaml"
    script:
        "../scripts/report_experiment.py"


rule report_conditions:
    # Only for experiments with two or more explain.conditions (report_files.condition_items).
    input:
        inputs="results/{experiment}/explain/inputs.npz",
        attributions=all_attribution_files,
    output:
        report(report_files.conditions_figure("{experiment}"), caption="../report/conditions.rst",
               category="Explanations", subcategory="{experiment}: noise conditions side by side"),
    params:
        code=code_of("report_conditions.py"),
        pairs=attribution_keys,
        conditions=CONDITIONS,
        methods=lambda wc: list(EXPLAIN_METHODS),
        overlay=dict(EXPLAIN.overlay),
        seed=EXPLAIN.seed,
    log:
        "logs/report/{experiment}/conditions.log",
    benchmark:
        "benchmarks/report/{experiment}/conditions.tsv"
    conda:
        "../../envs/explain.yaml"
    script:
        "../scripts/report_conditions.py"


rule report_run_facts:
    # Last: it reads every other job's benchmark file. The report's target (make report).
    input:
        everything=all_targets(),
        datasets=[f for d in DATASETS for f in report_files.dataset_items(d).values()],
        # not the model-only experiments of decorrelated ones: their accuracy is in the run facts
        experiments=[f for e in EXPERIMENTS if explained(config, e) for f in report_files.experiment_items(e).values()],
        conditions=[f for e in EXPERIMENTS for f in report_files.condition_items(config, e)],
        summaries=expand("results/{experiment}/eval/test_summary.json", experiment=EXPERIMENTS),
    output:
        report(report_files.RUN_FACTS, caption="../report/run_facts.rst", category="Run facts"),
    params:
        code=code_of("report_run_facts.py"),
        config=config,
        commit=lambda wc: git_commit(workflow.basedir),
        experiments=EXPERIMENTS,
        not_scored={e: report_files.not_scored(config, e) for e in EXPERIMENTS},
        # "": not trained here (a bring-your-own checkpoint, or model_from another experiment)
        train_logs={e: "" if SETTINGS[e]["model"].get("checkpoint") or SETTINGS[e]["model_from"]
                    else f"logs/{e}/train.log" for e in EXPERIMENTS},
        benchmarks="benchmarks",
        # rule -> its benchmark pattern; a function, so that it runs once every rule is defined
        patterns=lambda wc: {r.name: str(r.benchmark) for r in workflow.rules if r.benchmark is not None},
    log:
        "logs/report/run_facts.log",
    benchmark:
        "benchmarks/report/run_facts.tsv"
    conda:
        "../../envs/plot.yaml"
    script:
        "../scripts/report_run_facts.py"
