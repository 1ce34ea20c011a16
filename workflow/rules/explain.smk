# Attributions: selected test images x noise condition x method, in shards, gathered into one
# zarr store per experiment. Each method has its own attribution jobs (preflight with its first
# shard, the other shards), so re-tuning one method recomputes only that method's maps (and reruns
# the experiment-wide gather, store and grids).


rule select_samples:
    input:
        unpack(samples_inputs),
    output:
        "results/{experiment}/explain/samples.csv",
    params:
        code=code_of("select_samples.py"),
        selection=explain_selection_params,
        compare_to=lambda wc: SETTINGS[wc.experiment]["compare_to"],
    log:
        "logs/{experiment}/explain/select_samples.log",
    benchmark:
        "benchmarks/{experiment}/explain/select_samples.tsv"
    conda:
        "../../envs/explain.yaml"
    script:
        "../scripts/select_samples.py"


rule explain_inputs:
    input:
        samples="results/{experiment}/explain/samples.csv",
        model=model_checkpoint,
        test=lambda wc: f"{data_dir(wc)}/splits/test.csv",
        train=lambda wc: f"{data_dir(wc)}/splits/train.csv",
    output:
        "results/{experiment}/explain/inputs.npz",
    params:
        code=job_code("explain_inputs.py", model=True),
    log:
        "logs/{experiment}/explain/explain_inputs.log",
    benchmark:
        "benchmarks/{experiment}/explain/explain_inputs.tsv"
    resources:
        mem_mb=rule_resource("explain", "mem_mb", 4000),
    conda:
        "../../envs/explain.yaml"
    script:
        "../scripts/explain_inputs.py"


rule preflight:
    # Measures the method's batch size on shard 0's images, then explains that shard under the
    # first condition in the same process: a method with one shard costs one start-up, not two.
    input:
        model=model_checkpoint,
        inputs="results/{experiment}/explain/inputs.npz",
    output:
        preflight="results/{experiment}/explain/preflight/{method}.json",
        shard=f"results/{{experiment}}/explain/{CONDITIONS[0]}/{{method}}/shard-0.npz",
    params:
        code=job_code("preflight.py", method=True, model=True),
        method=method_spec,
        settings=explain_run_params,
        condition=CONDITIONS[0],
    log:
        "logs/{experiment}/explain/preflight/{method}.log",
    benchmark:
        "benchmarks/{experiment}/explain/preflight/{method}.tsv"
    threads: rule_resource("explain", "threads", 2)
    resources:
        gpu=rule_resource("explain", "gpu", 1),
        mem_mb=rule_resource("explain", "mem_mb", 4000),
        runtime=rule_resource("explain", "runtime", 30),
    conda:
        "../../envs/explain.yaml"
    script:
        "../scripts/preflight.py"


# The other shards, and every shard of the other conditions, use the measured batch size.
ruleorder: preflight > attribute


rule attribute:
    input:
        model=model_checkpoint,
        inputs="results/{experiment}/explain/inputs.npz",
        preflight="results/{experiment}/explain/preflight/{method}.json",
    output:
        "results/{experiment}/explain/{condition}/{method}/shard-{shard}.npz",
    params:
        code=job_code("attribute.py", method=True, model=True),
        method=method_spec,
        settings=explain_run_params,
    log:
        "logs/{experiment}/explain/{condition}/{method}/shard-{shard}.log",
    benchmark:
        "benchmarks/{experiment}/explain/{condition}/{method}/shard-{shard}.tsv"
    threads: rule_resource("explain", "threads", 2)
    resources:
        gpu=rule_resource("explain", "gpu", 1),
        mem_mb=rule_resource("explain", "mem_mb", 4000),
        runtime=attribute_runtime,
    conda:
        "../../envs/explain.yaml"
    script:
        "../scripts/attribute.py"


rule gather_attributions:
    # Every method's shards of one condition, concatenated, with its overlays and gallery: quick
    # steps, so one process does them for all methods instead of a process per method. Only
    # experiment-wide jobs (store, grids, scoring of all methods) read what it writes, and they
    # rerun when any method changes anyway; the per-method scoring jobs read the shards.
    input:
        unpack(condition_shard_files),
        inputs="results/{experiment}/explain/inputs.npz",
    output:
        attributions=expand("results/{{experiment}}/explain/{{condition}}/{method}/attributions.npz",
                            method=EXPLAIN_METHODS),
        overlays=[directory(p) for p in expand("results/{{experiment}}/explain/{{condition}}/{method}/overlays",
                                               method=EXPLAIN_METHODS)],
        galleries=[
            report(p, caption="../report/gallery.rst", category="Explanations",
                   subcategory="{experiment} {condition}")
            for p in expand("results/{{experiment}}/explain/{{condition}}/{method}/gallery.png",
                            method=EXPLAIN_METHODS)
        ],
    params:
        code=code_of("gather_attributions.py"),
        methods=list(EXPLAIN_METHODS),
        overlay=dict(EXPLAIN.overlay),
    log:
        "logs/{experiment}/explain/{condition}/gather.log",
    benchmark:
        "benchmarks/{experiment}/explain/{condition}/gather.tsv"
    conda:
        "../../envs/explain.yaml"
    script:
        "../scripts/gather_attributions.py"


rule explanation_store:
    input:
        inputs="results/{experiment}/explain/inputs.npz",
        attributions=all_attribution_files,
    output:
        directory("results/{experiment}/explain/store.zarr"),
    params:
        code=code_of("explanation_store.py"),
        pairs=attribution_keys,
    log:
        "logs/{experiment}/explain/store.log",
    benchmark:
        "benchmarks/{experiment}/explain/store.tsv"
    conda:
        "../../envs/explain.yaml"
    script:
        "../scripts/explanation_store.py"


rule method_grids:
    input:
        inputs="results/{experiment}/explain/inputs.npz",
        attributions=condition_attribution_files,
    output:
        # one report item per image (the runner/ layout folder is left out)
        report(
            directory("results/{experiment}/explain/{condition}/grids"),
            patterns=["{image,[^/]+}.png"],
            caption="../report/method_grids.rst",
            category="Explanations",
            subcategory="{experiment} {condition}: every method per image",
        ),
    params:
        code=code_of("method_grids.py"),
        methods=lambda wc: EXPLAIN_METHODS,
        overlay=dict(EXPLAIN.overlay),
        runner_layout=EXPLAIN.runner_layout,
    log:
        "logs/{experiment}/explain/{condition}/grids.log",
    benchmark:
        "benchmarks/{experiment}/explain/{condition}/grids.tsv"
    conda:
        "../../envs/explain.yaml"
    script:
        "../scripts/method_grids.py"
