# Run records (ferxai.records): per experiment results/runs/<experiment>.json with its resolved
# config and hash, git commit, test metrics, scores and output paths; across experiments
# results/runs.csv (one row each) and results/runs_scores.csv (one row per score); with
# tracking.mlflow_uri set, the same logged to MLflow (ferxai.tracking).
#
# The git commit is read when the record is written, not a param: a commit that changes no
# result (and, under DVC, the commit of dvc.lock that must follow every `dvc repro`) would
# otherwise make every record stale. A commit that changes code reruns the jobs whose results it
# changes (their `code` params) and so, through its inputs, the record, which then names it.


rule run_record:
    input:
        unpack(record_inputs),
    output:
        record_file("{experiment}"),
    params:
        code=code_of("run_record.py"),
        config=lambda wc: resolved_config(config, wc.experiment),
    log:
        "logs/{experiment}/run_record.log",
    benchmark:
        "benchmarks/{experiment}/run_record.tsv"
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/run_record.py"


rule runs_table:
    input:
        [record_file(e) for e in EXPERIMENTS],
    output:
        runs=RUNS_CSV,
        scores=RUN_SCORES_CSV,
    params:
        code=code_of("runs_table.py"),
    log:
        "logs/runs_table.log",
    benchmark:
        "benchmarks/runs_table.tsv"
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/runs_table.py"


# Requested (all_targets) only when tracking.mlflow_uri is set.
rule track_mlflow:
    input:
        runs=RUNS_CSV,
        records=[record_file(e) for e in EXPERIMENTS],
    output:
        MLFLOW_RECEIPT,
    params:
        code=code_of("track_mlflow.py"),
        tracking=TRACKING.to_dict(),
    log:
        "logs/track_mlflow.log",
    benchmark:
        "benchmarks/track_mlflow.tsv"
    conda:
        "../../envs/tracking.yaml"
    script:
        "../scripts/track_mlflow.py"
