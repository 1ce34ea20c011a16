import functools
import os
import sys
from pathlib import Path

from snakemake.utils import validate

# Scripts import the library straight from the source tree, so the workflow also runs inside
# per-rule conda envs (--sdm conda) that contain only the dependencies, not ferxai itself.
SRC = str(Path(workflow.basedir) / "src")
os.environ.update(
    PYTHONPATH=os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH", "")) if p)
)
if SRC not in sys.path:
    sys.path.insert(0, SRC)
# Matplotlib keeps a font cache in ~/.cache/matplotlib unless told otherwise; the jobs' one lives
# with Snakemake's own state in the working directory, so no job writes under the user's home.
os.environ.setdefault("MPLCONFIGDIR", os.path.abspath(os.path.join(".snakemake", "matplotlib")))

from ferxai.assess import catalog as metrics_catalog
from ferxai.assess.files import AGREEMENT, RANDOMISATION, ROBUSTNESS, per_image_file, shard_scores_file
from ferxai.config import (
    ConfigError,
    assess_metrics,
    check_config,
    config_layers,
    config_origin,
    expand_decorrelated,
    expand_replicates,
    experiment_settings,
    explain_methods,
    explained,
    has_no_classes,
    method_models,
    replicates_of,
)
from ferxai.data.options import ADAPTERS
from ferxai.explain import catalog as method_catalog
from ferxai.models import catalog as models_catalog
from ferxai.provenance import code_fingerprint
from ferxai.records import MLFLOW_RECEIPT, RUN_SCORES_CSV, RUNS_CSV, record_file, resolved_config
from ferxai.settings import AssessSettings, EvaluateSettings, ExplainSettings, TrackingSettings
from ferxai.stage_files import assess_figures, assess_targets, explain_targets


def config_sources():
    """Where config values come from, highest precedence first, so errors name the file to edit."""
    settings = workflow.config_settings
    return config_layers("config/config.yaml", settings.configfiles, settings.config)


try:
    validate(config, schema="../../config/schema.yaml")
except WorkflowError as err:
    raise WorkflowError(f"{', '.join(name for name, _ in config_sources())}: {err}") from None
try:
    # Replicates are ordinary experiments from here on: every rule and target sees them.
    config["experiments"] = expand_replicates(config)
    # so are the models of decorrelated experiments' methods (<experiment>_for_<method>)
    config["experiments"] = expand_decorrelated(config)
    check_config(config)
except ConfigError as err:
    raise WorkflowError(f"{config_origin(err.key, config_sources())}: {err}") from None

EXPLAIN = ExplainSettings.from_dict(config.get("explain"))
EVALUATE = EvaluateSettings.from_dict(config.get("evaluate"))
EXPLAIN_METHODS = explain_methods(config)  # label -> {"method": registry name, "params": {...}}
CONDITIONS = list(EXPLAIN.conditions)
ASSESS = AssessSettings.from_dict(config.get("assess"))
ASSESS_METRICS = assess_metrics(config)  # label -> {"metric", "family", "direction", "params"}
TRACKING = TrackingSettings.from_dict(config.get("tracking"))
DATASETS = sorted(config["datasets"])
EXPERIMENTS = sorted(config["experiments"])
SETTINGS = {name: experiment_settings(config, name) for name in EXPERIMENTS}
# decorrelated experiments: method label -> the experiment whose model explains it
METHOD_MODELS = {name: method_models(config, name) for name in EXPERIMENTS}


wildcard_constraints:
    dataset="|".join(map(re.escape, DATASETS)),
    experiment="|".join(map(re.escape, EXPERIMENTS)),
    method="|".join(map(re.escape, EXPLAIN_METHODS)) or "(?!)",
    condition="|".join(map(re.escape, CONDITIONS)) or "(?!)",
    shard=r"\d+",


def dataset_of(wildcards):
    return SETTINGS[wildcards.experiment]["dataset"]


def data_dir(wildcards):
    return f"results/data/{dataset_of(wildcards)}"


def model_checkpoint(wildcards):
    """The checkpoint later stages use: trained here, the user's own (bring-your-own), that of
    the experiment named by `model_from`, or, in a per-method job of a decorrelated experiment,
    the model of that method."""
    experiment = SETTINGS[wildcards.experiment]["model_from"] or wildcards.experiment
    method = getattr(wildcards, "method", None)
    experiment = METHOD_MODELS[wildcards.experiment].get(method, experiment)
    if SETTINGS[experiment]["model"].get("checkpoint"):
        return f"results/{experiment}/model/imported.pt"
    return f"results/{experiment}/model/best.pt"


def dataset_config(wildcards):
    return config["datasets"][wildcards.dataset]


def manifest_inputs(wildcards):
    """Files the adapter reads, so Snakemake reruns the manifest when they change.

    A path option that names nothing is an error here, before any job runs: as a missing input,
    Snakemake would drop the job and call the manifest built from the old path up to date.
    """
    from ferxai.data.fingerprint import input_files
    from ferxai.data.options import OptionError

    ds = dataset_config(wildcards)
    if ds["format"] == "synthetic":
        return {"synthetic": f"results/data/{wildcards.dataset}/synthetic"}
    try:
        return input_files(ds["format"], ds.get("options") or {})
    except OptionError as err:
        raise WorkflowError(f"datasets.{wildcards.dataset}.options.{err.key}: {err}") from None


def manifest_params(wildcards):
    """The adapter's options. From the config alone (not from `input`): Snakemake records only
    params that do not depend on input, and a recorded value is what makes a change rerun."""
    ds = dataset_config(wildcards)
    if ds["format"] == "synthetic":
        return {"root": f"results/data/{wildcards.dataset}/synthetic"}
    return dict(ds.get("options") or {})


def source_fingerprint(wildcards):
    """Names, sizes and mtimes of what the adapter reads that is no input file (image folders,
    the images a csv dataset lists): a change there reruns its manifest."""
    from ferxai.data.fingerprint import source_fingerprint as fingerprint

    ds = dataset_config(wildcards)
    if ds["format"] == "synthetic":
        return ""
    return fingerprint(ds["format"], ds.get("options") or {})


def train_params(wildcards):
    settings = SETTINGS[wildcards.experiment]
    return {"model": settings["model"], "train": settings["train"]}


SCRIPTS = Path(workflow.basedir) / "workflow" / "scripts"


# Catalog tables whose entries count only for the job of that entry (adding a method reruns
# nothing but its own jobs).
CATALOG_TABLES = (("ferxai.explain.catalog", "_ENTRIES"), ("ferxai.assess.catalog", "_ENTRIES"))


# What each library source imports, kept with Snakemake's own state in the working directory so
# a command parses only the sources edited since the last one (entries are named by content).
IMPORTS_CACHE = Path(os.path.abspath(os.path.join(".snakemake", "ferxai", "imports")))


def code_of(script, *modules, keep=()):
    """`code` param of a rule: a fingerprint of the library code its script runs (and `modules`)
    and of the versions of the packages that code imports, so that a library fix or upgrade
    reruns the jobs it affects (Snakemake itself tracks only the script). `keep`: the catalog
    entries (methods, metrics) the job uses. Computed once per script and modules for the DAG."""
    return cached_fingerprint(str(SCRIPTS / script), *modules, tables=CATALOG_TABLES, keep=tuple(sorted(keep)),
                              cache=IMPORTS_CACHE)


cached_fingerprint = functools.lru_cache(maxsize=None)(code_fingerprint)


def job_code(script, method=False, model=False, adapter=False, metrics=None):
    """`code` param for scripts that load code by name, which the static walk cannot see; adds
    the method's module (per-method jobs), the experiment's architecture module (jobs that build
    or load its model), the dataset format's adapter (the manifest) or the modules of a metric
    family's configured metrics."""

    def fingerprint(wildcards):
        modules, keep = [], []
        if method:
            keep.append(EXPLAIN_METHODS[wildcards.method]["method"])
            modules.append(method_catalog.get(keep[-1]).implementation.split(":")[0])
        if metrics:
            for spec in metrics_of(metrics).values():
                keep.append(spec["metric"])
                modules.append(metrics_catalog.get(spec["metric"]).implementation.split(":")[0])
        if model:
            modules.append(models_catalog.family(SETTINGS[wildcards.experiment]["model"]["arch"]).module)
        if adapter:
            modules.append(ADAPTERS[dataset_config(wildcards)["format"]].split(":")[0])
        return code_of(script, *dict.fromkeys(modules), keep=keep)

    return fingerprint


def rule_resource(group, key, default):
    return config.get("resources", {}).get(group, {}).get(key, default)


EVAL_PLOTS = [
    "confusion_matrix",
    "confusion_matrix_normalized",
    "train_loss",
    "val_loss",
    "val_accuracy",
    "val_macro_f1",
]


def samples_inputs(wildcards):
    """The experiment's predictions, and with compare_to the other experiment's selection (`like`)."""
    inputs = {"predictions": f"results/{wildcards.experiment}/eval/predictions.csv"}
    if other := SETTINGS[wildcards.experiment]["compare_to"]:
        inputs["like"] = f"results/{other}/explain/samples.csv"
    return inputs


# Plain dicts of the settings, made once: a DAG asks for them once per job.
EXPLAIN_SELECTION = EXPLAIN.selection()
EXPLAIN_RUN = EXPLAIN.run()


def explain_selection_params(wildcards):
    return EXPLAIN_SELECTION


def explain_run_params(wildcards):
    """Settings every attribution job of a method sees (but not other methods' parameters)."""
    return EXPLAIN_RUN


def method_spec(wildcards):
    return EXPLAIN_METHODS[wildcards.method]


def method_shard_files(experiment, condition, method):
    prefix = f"results/{experiment}/explain/{condition}/{method}"
    return [f"{prefix}/shard-{k}.npz" for k in range(EXPLAIN.shards)]


def condition_shard_files(wildcards):
    """Named inputs of a condition's gather: `shards_<i>`, the shards of EXPLAIN_METHODS' i-th."""
    return {f"shards_{i}": method_shard_files(wildcards.experiment, wildcards.condition, method)
            for i, method in enumerate(EXPLAIN_METHODS)}


def attribute_runtime(wildcards, input):
    """Minutes for one shard, from the method's measured seconds per image (cluster schedulers)."""
    import json

    from ferxai.explain.shards import shard_runtime_minutes

    with open(input.preflight) as fh:
        preflight = json.load(fh)
    # A record written before shard_images existed is stale and reruns before this shard does.
    return shard_runtime_minutes(preflight["sec_per_image"], preflight.get("shard_images", 0))


def attribution_keys(wildcards):
    return [(c, m) for c in CONDITIONS for m in EXPLAIN_METHODS]


def all_attribution_files(wildcards):
    e = wildcards.experiment
    return [f"results/{e}/explain/{c}/{m}/attributions.npz" for c, m in attribution_keys(wildcards)]


def condition_attribution_files(wildcards):
    e, c = wildcards.experiment, wildcards.condition
    return [f"results/{e}/explain/{c}/{m}/attributions.npz" for m in EXPLAIN_METHODS]


def compared_attribution_files(wildcards):
    """The maps of the experiment named by compare_to, in attribution_keys order."""
    other = SETTINGS[wildcards.experiment]["compare_to"]
    return [f"results/{other}/explain/{c}/{m}/attributions.npz" for c, m in attribution_keys(wildcards)]


def agreement_outputs():
    return [per_image_file("results/{experiment}/assess", c, m, AGREEMENT) for c in CONDITIONS for m in EXPLAIN_METHODS]


def training_data(experiment):
    """What an experiment's model trained on: "all" of the training split or "part i of K"."""
    train = SETTINGS[experiment]["train"]
    parts = train.get("data_parts", 1)
    return "all" if parts == 1 else f"part {train.get('data_part', 0) + 1} of {parts}"


def comparison_targets(experiment):
    """The agreement files of an experiment with compare_to, the replicate summary of one with
    replicates, and the method-against-method agreement of a decorrelated experiment and of the
    one it is compared to (when methods are explained at all)."""
    if not EXPLAIN_METHODS or not explained(config, experiment):
        return []
    root = f"results/{experiment}/assess"
    targets = []
    if SETTINGS[experiment]["compare_to"]:
        targets += [f"{root}/agreement.csv", f"{root}/agreement.png"]
    if replicates_of(config, experiment):
        targets += [f"{root}/replicate_agreement.csv", f"{root}/replicate_accuracy.csv",
                    f"{root}/replicate_agreement.png"]
    # methods against methods: a decorrelated experiment, and the one it is compared to
    if METHOD_MODELS[experiment] or any(METHOD_MODELS[e] and SETTINGS[e]["compare_to"] == experiment
                                        for e in EXPERIMENTS):
        targets += [f"{root}/method_agreement.csv", f"{root}/method_agreement.png"]
    return targets


def experiment_targets(experiment):
    eval_dir = f"results/{experiment}/eval"
    targets = [f"{eval_dir}/test_summary.json"]
    plots = EVAL_PLOTS
    if SETTINGS[experiment]["model"].get("checkpoint") or SETTINGS[experiment]["model_from"]:
        # Training curves exist only for models trained here (model_from: in that experiment).
        plots = [p for p in plots if p.startswith("confusion")]
    if has_no_classes(config, experiment):
        # A user's images without classes: predictions (and explanations) but no confusion matrix.
        plots = []
    targets += [f"{eval_dir}/plots/{p}.png" for p in plots]
    # One list of explanation (and scoring) targets, shared with the DVC stages (dvc.yaml).
    targets += explain_targets(config, experiment)
    targets += assess_targets(config, experiment)
    targets += comparison_targets(experiment)
    return targets


def all_targets():
    targets = [f"results/data/{d}/splits/summary.csv" for d in DATASETS]
    for experiment in EXPERIMENTS:
        targets += experiment_targets(experiment)
    # run records across experiments (records.smk), logged to MLflow when tracking.mlflow_uri is set
    targets += [RUNS_CSV, RUN_SCORES_CSV] + ([MLFLOW_RECEIPT] if TRACKING.mlflow_uri else [])
    return targets


# Scoring (assess.smk)

MAP_FAMILIES = ("localisation", "complexity")  # scored by one job per experiment and family


def metrics_of(family):
    return {label: spec for label, spec in ASSESS_METRICS.items() if spec["family"] == family}


def assess_root(wildcards):
    return f"results/{wildcards.experiment}/assess"


def map_family_outputs(family):
    """Every per-image file of a map-only family: one per (condition, method, metric)."""
    return [per_image_file("results/{experiment}/assess", c, m, label)
            for c in CONDITIONS for m in EXPLAIN_METHODS for label in metrics_of(family)]


MODEL_FAMILIES = ("faithfulness", "sensitivity")  # run the model: one job per (condition, method, shard)


def family_shard_scores(wildcards):
    """Every shard table of the model-running families, the gather job's inputs."""
    root = assess_root(wildcards)
    return [shard_scores_file(root, c, m, family, k) for family in MODEL_FAMILIES if metrics_of(family)
            for c in CONDITIONS for m in EXPLAIN_METHODS for k in range(EXPLAIN.shards)]


def gathered_outputs():
    """The per-image files the gather job writes from the model-running families' shards."""
    return [per_image_file("results/{experiment}/assess", c, m, label) for family in MODEL_FAMILIES
            for label in metrics_of(family) for c in CONDITIONS for m in EXPLAIN_METHODS]


def randomisation_on():
    return "assess" in config and ASSESS.randomisation.images > 0


def noisy_conditions():
    return CONDITIONS[1:]


def robustness_outputs():
    return [per_image_file("results/{experiment}/assess", c, m, ROBUSTNESS)
            for c in noisy_conditions() for m in EXPLAIN_METHODS]


def attribution_file(experiment, condition, method):
    return f"results/{experiment}/explain/{condition}/{method}/attributions.npz"


def reference_attributions(wildcards):
    """The first condition's maps of every method, in EXPLAIN_METHODS order."""
    return [attribution_file(wildcards.experiment, CONDITIONS[0], m) for m in EXPLAIN_METHODS]


def noisy_attributions(wildcards):
    return [attribution_file(wildcards.experiment, c, m) for c in noisy_conditions() for m in EXPLAIN_METHODS]


def per_image_scores(wildcards):
    """Every per-image score file of the experiment, the scorecard's inputs."""
    root = assess_root(wildcards)
    files = [per_image_file(root, c, m, label) for c in CONDITIONS for m in EXPLAIN_METHODS
             for label in ASSESS_METRICS]
    if randomisation_on():
        files += [per_image_file(root, CONDITIONS[0], m, RANDOMISATION) for m in EXPLAIN_METHODS]
    files += [per_image_file(root, c, m, ROBUSTNESS) for c in noisy_conditions() for m in EXPLAIN_METHODS]
    return files


def preflight_files(wildcards):
    """Every method's preflight record (its measured cost), in EXPLAIN_METHODS order."""
    return [f"results/{wildcards.experiment}/explain/preflight/{m}.json" for m in EXPLAIN_METHODS]


# Run records (records.smk)


def record_inputs(wildcards):
    """The files an experiment's run record reads or names, under their ferxai.records.PATHS names."""
    e = wildcards.experiment
    inputs = {"model": model_checkpoint(wildcards), "test_summary": f"results/{e}/eval/test_summary.json",
              "predictions": f"results/{e}/eval/predictions.csv"}
    if explain_targets(config, e):
        inputs["explain_store"] = f"results/{e}/explain/store.zarr"
    if assess_targets(config, e):
        inputs["scores"] = f"results/{e}/assess/scores.csv"
    return inputs
