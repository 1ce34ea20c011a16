# Scores of the explanations: per-image metric values against ground truth (localisation), the
# model (faithfulness, the randomisation sanity check) and the input (robustness, complexity),
# then one scorecard per experiment. Map-only families are one job per experiment (milliseconds of
# work per method); model-running ones one job per (condition, method), so re-tuning a method or a
# metric reruns only the jobs it affects and the scorecard.


if metrics_of("localisation"):

    rule assess_localisation:
        input:
            inputs="results/{experiment}/explain/inputs.npz",
            attributions=all_attribution_files,
        output:
            map_family_outputs("localisation"),
        params:
            code=job_code("assess_maps.py", metrics="localisation"),
            metrics=metrics_of("localisation"),
            pairs=attribution_keys,
            root=assess_root,
        log:
            "logs/{experiment}/assess/localisation.log",
        benchmark:
            "benchmarks/{experiment}/assess/localisation.tsv"
        conda:
            "../../envs/explain.yaml"
        script:
            "../scripts/assess_maps.py"


    rule assess_mask_zoom:
        # one figure per experiment: every method's map of one image, whole and zoomed on its mask
        input:
            inputs="results/{experiment}/explain/inputs.npz",
            attributions=reference_attributions,
            scores=lambda wc: [per_image_file(assess_root(wc), CONDITIONS[0], m, label)
                               for m in EXPLAIN_METHODS for label in metrics_of("localisation")],
        output:
            report(
                "results/{experiment}/assess/mask_zoom.png",
                caption="../report/assess_mask_zoom.rst",
                category="Explanation quality",
                subcategory="{experiment}",
            ),
        params:
            code=code_of("assess_mask_zoom.py"),
            methods=list(EXPLAIN_METHODS),
            condition=CONDITIONS[0],
            metrics=metrics_of("localisation"),
            overlay=dict(EXPLAIN.overlay),
            root=assess_root,
        log:
            "logs/{experiment}/assess/mask_zoom.log",
        benchmark:
            "benchmarks/{experiment}/assess/mask_zoom.tsv"
        conda:
            "../../envs/explain.yaml"
        script:
            "../scripts/assess_mask_zoom.py"


if metrics_of("complexity"):

    rule assess_complexity:
        input:
            inputs="results/{experiment}/explain/inputs.npz",
            attributions=all_attribution_files,
        output:
            map_family_outputs("complexity"),
        params:
            code=job_code("assess_maps.py", metrics="complexity"),
            metrics=metrics_of("complexity"),
            pairs=attribution_keys,
            root=assess_root,
        log:
            "logs/{experiment}/assess/complexity.log",
        benchmark:
            "benchmarks/{experiment}/assess/complexity.tsv"
        conda:
            "../../envs/explain.yaml"
        script:
            "../scripts/assess_maps.py"


if metrics_of("faithfulness"):

    rule assess_preflight:
        # The model's forward batch size, once per experiment: every faithfulness job runs it.
        # Nothing here depends on the methods, so adding one reruns no other method's scores.
        input:
            model=model_checkpoint,
            inputs="results/{experiment}/explain/inputs.npz",
        output:
            "results/{experiment}/assess/preflight.json",
        params:
            code=job_code("assess_preflight.py", model=True, metrics="faithfulness"),
            metrics=metrics_of("faithfulness"),
            assess=ASSESS.run(),
            explain=explain_run_params,
        log:
            "logs/{experiment}/assess/preflight.log",
        benchmark:
            "benchmarks/{experiment}/assess/preflight.tsv"
        threads: rule_resource("explain", "threads", 2)
        resources:
            gpu=rule_resource("explain", "gpu", 1),
            mem_mb=rule_resource("explain", "mem_mb", 4000),
            runtime=rule_resource("explain", "runtime", 30),
        conda:
            "../../envs/explain.yaml"
        script:
            "../scripts/assess_preflight.py"

    rule assess_faithfulness:
        input:
            model=model_checkpoint,
            inputs="results/{experiment}/explain/inputs.npz",
            shard="results/{experiment}/explain/{condition}/{method}/shard-{shard}.npz",
            preflight="results/{experiment}/assess/preflight.json",
        output:
            shard_scores_file("results/{experiment}/assess", "{condition}", "{method}", "faithfulness", "{shard}"),
        params:
            code=job_code("assess_faithfulness.py", model=True, metrics="faithfulness"),
            metrics=metrics_of("faithfulness"),
            assess=ASSESS.run(),
            explain=explain_run_params,
            root=assess_root,
        log:
            "logs/{experiment}/assess/{condition}/{method}/faithfulness-{shard}.log",
        benchmark:
            "benchmarks/{experiment}/assess/{condition}/{method}/faithfulness-{shard}.tsv"
        threads: rule_resource("explain", "threads", 2)
        resources:
            gpu=rule_resource("explain", "gpu", 1),
            mem_mb=rule_resource("explain", "mem_mb", 4000),
            runtime=rule_resource("explain", "runtime", 30),
        conda:
            "../../envs/explain.yaml"
        script:
            "../scripts/assess_faithfulness.py"


if metrics_of("sensitivity"):

    rule assess_sensitivity:
        # Recomputes the method's maps for perturbed images (on the first images only).
        input:
            model=model_checkpoint,
            inputs="results/{experiment}/explain/inputs.npz",
            shard="results/{experiment}/explain/{condition}/{method}/shard-{shard}.npz",
            preflight="results/{experiment}/explain/preflight/{method}.json",
        output:
            shard_scores_file("results/{experiment}/assess", "{condition}", "{method}", "sensitivity", "{shard}"),
        params:
            code=job_code("assess_sensitivity.py", method=True, model=True, metrics="sensitivity"),
            method=method_spec,
            metrics=metrics_of("sensitivity"),
            explain=explain_run_params,
        log:
            "logs/{experiment}/assess/{condition}/{method}/sensitivity-{shard}.log",
        benchmark:
            "benchmarks/{experiment}/assess/{condition}/{method}/sensitivity-{shard}.tsv"
        threads: rule_resource("explain", "threads", 2)
        resources:
            gpu=rule_resource("explain", "gpu", 1),
            mem_mb=rule_resource("explain", "mem_mb", 4000),
            runtime=rule_resource("explain", "runtime", 30),
        conda:
            "../../envs/explain.yaml"
        script:
            "../scripts/assess_sensitivity.py"


if any(metrics_of(family) for family in MODEL_FAMILIES):

    rule assess_gather:
        # The shard tables of the model-running families as per-image files, one per metric.
        input:
            inputs="results/{experiment}/explain/inputs.npz",
            shards=family_shard_scores,
        output:
            gathered_outputs(),
        params:
            code=code_of("assess_gather.py"),
            families={family: list(metrics_of(family)) for family in MODEL_FAMILIES if metrics_of(family)},
            pairs=attribution_keys,
            shards=EXPLAIN.shards,
            root=assess_root,
        log:
            "logs/{experiment}/assess/gather.log",
        benchmark:
            "benchmarks/{experiment}/assess/gather.tsv"
        conda:
            "../../envs/explain.yaml"
        script:
            "../scripts/assess_gather.py"


rule assess_randomisation:
    # Recomputes the method's maps for models with ever more layers re-initialised: the stage's
    # most expensive jobs, on the first assess.randomisation.images images only.
    input:
        model=model_checkpoint,
        inputs="results/{experiment}/explain/inputs.npz",
        preflight="results/{experiment}/explain/preflight/{method}.json",
    output:
        per_image_file("results/{experiment}/assess", CONDITIONS[0], "{method}", RANDOMISATION),
    params:
        code=job_code("assess_randomisation.py", method=True, model=True),
        method=method_spec,
        explain=explain_run_params,
        randomisation=ASSESS.randomisation.to_dict(),
        condition=CONDITIONS[0],
    log:
        "logs/{experiment}/assess/{method}/randomisation.log",
    benchmark:
        "benchmarks/{experiment}/assess/{method}/randomisation.tsv"
    threads: rule_resource("explain", "threads", 2)
    resources:
        gpu=rule_resource("explain", "gpu", 1),
        mem_mb=rule_resource("explain", "mem_mb", 4000),
        runtime=rule_resource("explain", "runtime", 30),
    conda:
        "../../envs/explain.yaml"
    script:
        "../scripts/assess_randomisation.py"


if noisy_conditions():

    rule assess_robustness:
        input:
            inputs="results/{experiment}/explain/inputs.npz",
            reference=reference_attributions,
            noisy=noisy_attributions,
        output:
            robustness_outputs(),
        params:
            code=code_of("assess_robustness.py"),
            robustness=ASSESS.robustness.to_dict(),
            methods=list(EXPLAIN_METHODS),
            pairs=lambda wc: [(c, m) for c in noisy_conditions() for m in EXPLAIN_METHODS],
            root=assess_root,
        log:
            "logs/{experiment}/assess/robustness.log",
        benchmark:
            "benchmarks/{experiment}/assess/robustness.tsv"
        conda:
            "../../envs/explain.yaml"
        script:
            "../scripts/assess_robustness.py"


rule assess_scores:
    input:
        scores=per_image_scores,
        preflight=preflight_files,
        attributions=all_attribution_files,
    output:
        scores="results/{experiment}/assess/scores.csv",
        # the means for `dvc metrics` / `dvc exp show`, beside the folder DVC tracks as an out
        scores_json="results/{experiment}/scores.json",
        reliability="results/{experiment}/assess/metric_reliability.csv",
        # every per-image score as zarr, on the sample axis of explain/store.zarr
        store=directory("results/{experiment}/assess/scores.zarr"),
        summary="results/{experiment}/assess/summary.md",
        figures=[
            report(
                f"results/{{experiment}}/assess/{name}.png",
                caption=f"../report/assess_{name}.rst",
                category="Explanation quality",
                subcategory="{experiment}",
            )
            for name in assess_figures(config)
        ],
    params:
        code=code_of("assess_scores.py"),
        methods=list(EXPLAIN_METHODS),
        conditions=CONDITIONS,
        pairs=attribution_keys,
        metrics=ASSESS_METRICS,
        randomisation=randomisation_on(),
        intervals=ASSESS.intervals.to_dict(),
        root=assess_root,
    log:
        "logs/{experiment}/assess/scores.log",
    benchmark:
        "benchmarks/{experiment}/assess/scores.tsv"
    conda:
        "../../envs/explain.yaml"
    script:
        "../scripts/assess_scores.py"


rule assess_agreement:
    # Experiments with compare_to: each method's maps against the other experiment's maps of the
    # same images (a shuffled-label model against the real one, a replicate against the first).
    input:
        inputs="results/{experiment}/explain/inputs.npz",
        reference_inputs=lambda wc: f"results/{SETTINGS[wc.experiment]['compare_to']}/explain/inputs.npz",
        attributions=all_attribution_files,
        reference_attributions=compared_attribution_files,
    output:
        per_image=agreement_outputs(),
        summary="results/{experiment}/assess/agreement.csv",
        figure=report(
            "results/{experiment}/assess/agreement.png",
            caption="../report/assess_agreement.rst",
            category="Explanation quality",
            subcategory="{experiment}",
        ),
    params:
        code=code_of("assess_agreement.py"),
        compare_to=lambda wc: SETTINGS[wc.experiment]["compare_to"],
        pairs=attribution_keys,
        agreement=ASSESS.agreement.to_dict(),
        intervals=ASSESS.intervals.to_dict(),
        root=assess_root,
    log:
        "logs/{experiment}/assess/agreement.log",
    benchmark:
        "benchmarks/{experiment}/assess/agreement.tsv"
    conda:
        "../../envs/explain.yaml"
    script:
        "../scripts/assess_agreement.py"


rule replicate_agreement:
    # Experiments with replicates: the agreement of every replicate with the first, pooled, beside
    # each model's test accuracy.
    input:
        agreement=lambda wc: [f"results/{r}/assess/agreement.csv" for r in replicates_of(config, wc.experiment)[1:]],
        test=lambda wc: [f"results/{r}/eval/test_summary.json" for r in replicates_of(config, wc.experiment)],
    output:
        summary="results/{experiment}/assess/replicate_agreement.csv",
        accuracy="results/{experiment}/assess/replicate_accuracy.csv",
        figure=report(
            "results/{experiment}/assess/replicate_agreement.png",
            caption="../report/assess_replicate_agreement.rst",
            category="Explanation quality",
            subcategory="{experiment}",
        ),
    params:
        code=code_of("replicate_agreement.py"),
        replicates=lambda wc: replicates_of(config, wc.experiment),
        roots=lambda wc: {r: f"results/{r}/assess" for r in replicates_of(config, wc.experiment)[1:]},
        seeds=lambda wc: {r: SETTINGS[r]["train"].get("seed", 0) for r in replicates_of(config, wc.experiment)},
        training_data=lambda wc: {r: training_data(r) for r in replicates_of(config, wc.experiment)},
        pairs=attribution_keys,
        intervals=ASSESS.intervals.to_dict(),
    log:
        "logs/{experiment}/assess/replicate_agreement.log",
    benchmark:
        "benchmarks/{experiment}/assess/replicate_agreement.tsv"
    conda:
        "../../envs/explain.yaml"
    script:
        "../scripts/replicate_agreement.py"


rule method_agreement:
    # Every pair of methods on the same images: for a decorrelated experiment (one model per
    # method) and for the experiment it is compared to (one model for all).
    input:
        inputs="results/{experiment}/explain/inputs.npz",
        attributions=all_attribution_files,
    output:
        table="results/{experiment}/assess/method_agreement.csv",
        figure=report(
            "results/{experiment}/assess/method_agreement.png",
            caption="../report/assess_method_agreement.rst",
            category="Explanation quality",
            subcategory="{experiment}",
        ),
    params:
        code=code_of("method_agreement.py"),
        pairs=attribution_keys,
        decorrelated=lambda wc: bool(METHOD_MODELS[wc.experiment]),
        agreement=ASSESS.agreement.to_dict(),
        intervals=ASSESS.intervals.to_dict(),
    log:
        "logs/{experiment}/assess/method_agreement.log",
    benchmark:
        "benchmarks/{experiment}/assess/method_agreement.tsv"
    conda:
        "../../envs/explain.yaml"
    script:
        "../scripts/method_agreement.py"
