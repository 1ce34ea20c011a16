"""Resolving the workflow configuration into per-experiment settings.

The JSON schema (config/schema.yaml) checks shapes and types; this module checks what a schema
cannot: cross references between sections, and the merged settings each stage sees.
"""

from __future__ import annotations

import copy
import hashlib
import re
from typing import Any, Mapping, Sequence

from ferxai.settings import (AssessSettings, EvaluateSettings, ExplainSettings, TrackingSettings,  # noqa: F401
                             config_hash)  # (config_hash re-exported)


class ConfigError(ValueError):
    """A configuration problem; the message names the offending section and key."""

    @property
    def key(self) -> str:
        """The dotted key the message starts with ("datasets.ck.options"), or "" if none."""
        match = re.match(r"([A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*)[:\s]", str(self))
        return match.group(1) if match else ""


def _has_key(mapping: Any, dotted: str) -> bool:
    """Whether `dotted` names a value in nested `mapping`; a key may itself contain dots (the
    schema allows them in dataset, model and experiment names), so every split is tried."""
    if not dotted:
        return True
    if not isinstance(mapping, Mapping):
        return False
    parts = dotted.split(".")
    return any(".".join(parts[:k]) in mapping and _has_key(mapping[".".join(parts[:k])], ".".join(parts[k:]))
               for k in range(1, len(parts) + 1))


def config_origin(key: str, layers: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    """Where the value at `key` came from: the first of `layers` (name, values), highest precedence
    first, that sets it, or its longest prefix; all names joined when none does.

    Snakemake merges the Snakefile's ``configfile:``, each ``--configfile`` (later ones win) and
    ``--config`` values; an error must point at the file the user has to edit.
    """
    parts = key.split(".") if key else []
    for depth in range(len(parts), 0, -1):
        prefix = ".".join(parts[:depth])
        for name, values in layers:
            if _has_key(values, prefix):
                return name
    return ", ".join(name for name, _ in layers)


def config_layers(default_file: str, cli_files: Sequence[Any] = (), cli_values: Mapping[str, Any] | None = None
                  ) -> list[tuple[str, Mapping[str, Any]]]:
    """The configuration's sources as (name, values), highest precedence first: ``--config``
    values, then each ``--configfile`` (the last given wins), then the Snakefile's default file."""
    import os

    import yaml

    def load(path: Any) -> Mapping[str, Any]:
        try:
            with open(path, encoding="utf-8") as handle:
                return yaml.safe_load(handle) or {}
        except (OSError, yaml.YAMLError):
            return {}

    def shown(path: Any) -> str:
        rel = os.path.relpath(path)
        return str(path) if rel.startswith("..") else rel

    layers: list[tuple[str, Mapping[str, Any]]] = []
    if cli_values:
        layers.append(("--config", dict(cli_values)))
    layers += [(shown(path), load(path)) for path in reversed(list(cli_files))]
    layers.append((default_file, load(default_file)))
    return layers


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`override` on top of `base`, recursing into nested mappings (lists are replaced whole)."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def experiment_settings(config: Mapping[str, Any], experiment: str) -> dict[str, Any]:
    """Everything one experiment depends on: dataset, model and the merged training settings."""
    try:
        exp = config["experiments"][experiment]
    except KeyError:
        raise ConfigError(f"experiments: no experiment named {experiment!r}") from None
    dataset, model = exp["dataset"], exp["model"]
    if dataset not in config["datasets"]:
        raise ConfigError(
            f"experiments.{experiment}.dataset: {dataset!r} is not in datasets "
            f"({', '.join(sorted(config['datasets']))})"
        )
    if model not in config["models"]:
        raise ConfigError(
            f"experiments.{experiment}.model: {model!r} is not in models "
            f"({', '.join(sorted(config['models']))})"
        )
    model_from = exp.get("model_from")
    if model_from is not None:
        _check_model_from(config, experiment, model_from, model)
    compare_to = exp.get("compare_to")
    if compare_to is not None:
        _check_compare_to(config, experiment, compare_to)
    return {
        "dataset": dataset,
        "model_name": model,
        "model": copy.deepcopy(dict(config["models"][model])),
        "train": deep_merge(config.get("train", {}), exp.get("train") or {}),
        "model_from": model_from,
        "compare_to": compare_to,
    }


def _check_compare_to(config: Mapping[str, Any], experiment: str, compare_to: str) -> None:
    key = f"experiments.{experiment}.compare_to"
    experiments = config["experiments"] or {}
    other = experiments.get(compare_to)
    if other is None or compare_to == experiment:
        raise ConfigError(f"{key}: {compare_to!r} is not another experiment "
                          f"({', '.join(sorted(e for e in experiments if e != experiment))})")
    if other["dataset"] != experiments[experiment]["dataset"]:
        raise ConfigError(f"{key}: experiment {compare_to!r} explains images of dataset {other['dataset']!r}, "
                          f"this one is on {experiments[experiment]['dataset']!r}; the same images need the same "
                          "dataset")
    seen, current = [experiment], compare_to
    while current is not None:
        if current in seen:
            raise ConfigError(f"{key}: the compare_to chain {' -> '.join([*seen, current])} is a cycle")
        seen.append(current)
        current = (experiments.get(current) or {}).get("compare_to")


def _trains_a_model(config: Mapping[str, Any], exp: Mapping[str, Any]) -> bool:
    """False for an experiment that takes its model from elsewhere (model_from, a checkpoint)."""
    return not (exp.get("model_from") or config["models"].get(exp["model"], {}).get("checkpoint"))


def _train_seed(config: Mapping[str, Any], exp: Mapping[str, Any]) -> int:
    """The experiment's training seed: its own train.seed, else the global one, else 0."""
    return deep_merge(config.get("train", {}), exp.get("train") or {}).get("seed", 0)


def replicate_name(experiment: str, index: int) -> str:
    """The experiment name of replicate `index` (2, 3, ...) of `experiment` (itself replicate 1)."""
    return f"{experiment}_rep{index}"


def expand_replicates(config: Mapping[str, Any]) -> dict[str, Any]:
    """`experiments` with every `replicates: K` entry followed by its K - 1 replicates: the same
    dataset and model, trained with train.seed + 1, ..., + K - 1, explaining the experiment's images
    (`compare_to`). The entry itself keeps `replicates`, so the summary knows its replicates. With
    `replicate_data: disjoint` the K models train on the K disjoint parts of the training split
    (train.data_parts, data_part), the experiment itself on the first."""
    experiments = dict(config["experiments"] or {})
    expanded: dict[str, Any] = {}
    for name, exp in experiments.items():
        expanded[name] = exp
        count = exp.get("replicates")
        if count is None:
            if "replicate_data" in exp:
                raise ConfigError(f"experiments.{name}.replicate_data: only means something with replicates: K")
            continue
        key = f"experiments.{name}.replicates"
        if not _trains_a_model(config, exp):
            raise ConfigError(f"{key}: replicates are models trained with different seeds, but this experiment "
                              "trains nothing (model_from or models.<name>.checkpoint)")
        seed = _train_seed(config, exp)
        if exp.get("replicate_data", "same") == "disjoint":
            # every replicate on its own part of the training split, the experiment itself on the first
            exp = expanded[name] = {**exp, "train": deep_merge(exp.get("train") or {},
                                                               {"data_parts": count, "data_part": 0})}
        for index in range(2, count + 1):
            replica = replicate_name(name, index)
            if replica in experiments:
                raise ConfigError(f"{key}: replicate {replica!r} would replace the experiment of that name; "
                                  "rename one of them")
            entry = {k: copy.deepcopy(v) for k, v in exp.items()
                     if k not in ("replicates", "replicate_data", "compare_to")}
            part = {"data_part": index - 1} if exp.get("replicate_data") == "disjoint" else {}
            entry["train"] = deep_merge(exp.get("train") or {}, {"seed": seed + index - 1, **part})
            entry["compare_to"] = name
            expanded[replica] = entry
    return expanded


def replicates_of(config: Mapping[str, Any], experiment: str) -> list[str]:
    """The experiment and its replicates, in order; [] for an experiment without `replicates`."""
    count = (config["experiments"][experiment] or {}).get("replicates")
    return [experiment, *(replicate_name(experiment, i) for i in range(2, count + 1))] if count else []


def decorrelated(config: Mapping[str, Any], experiment: str) -> bool:
    """Whether `experiment` explains each method with its own model (experiments.<name>.decorrelate,
    else explain.decorrelate)."""
    exp = (config["experiments"] or {})[experiment] or {}
    if "decorrelate" in exp:
        return bool(exp["decorrelate"])
    return bool((config.get("explain") or {}).get("decorrelate", False))


def method_model_name(experiment: str, method: str) -> str:
    """The experiment name of the model that explains `method` in a decorrelated `experiment`."""
    return f"{experiment}_for_{method}"


def method_model_seed(seed: int, method: str) -> int:
    """A training seed of its own for `method`'s model: from the method's label, not its place in
    the list, so adding or removing a method trains or drops that method's model only."""
    return seed + 1 + int(hashlib.sha256(method.encode()).hexdigest()[:8], 16) % 1_000_000


def model_explained_methods(config: Mapping[str, Any]) -> list[str]:
    """The configured methods (labels) that look at the model: every family but the controls."""
    from ferxai.explain import catalog

    return [label for label, spec in explain_methods(config).items()
            if catalog.get(spec["method"]).family != "control"]


def expand_decorrelated(config: Mapping[str, Any]) -> dict[str, Any]:
    """`experiments` with, after every decorrelated experiment, one model-only experiment per
    method that looks at the model (<experiment>_for_<method>): the same dataset, model and
    training, another seed (method_model_seed), trained and evaluated but not explained itself
    (`model_for`). The experiment's own model still selects the images and sets the targets."""
    experiments = dict(config["experiments"] or {})
    expanded: dict[str, Any] = {}
    for name, exp in experiments.items():
        expanded[name] = exp
        if not decorrelated(config, name):
            continue
        key = f"experiments.{name}.decorrelate" if "decorrelate" in (exp or {}) else "explain.decorrelate"
        if not _trains_a_model(config, exp):
            raise ConfigError(f"{key}: experiment {name!r} trains no model (model_from or models.<name>.checkpoint), "
                              "so it has no recipe to train one model per method; set decorrelate: false on it")
        if exp.get("replicates"):
            raise ConfigError(f"{key}: experiment {name!r} also has replicates; decorrelated maps of every "
                              "replicate would train one model per method and replicate. Use one or the other")
        seed = _train_seed(config, exp)
        for method in model_explained_methods(config):
            model_name = method_model_name(name, method)
            if model_name in experiments:
                raise ConfigError(f"{key}: the model of method {method!r} would be experiment {model_name!r}, "
                                  "which the configuration already has; rename one of them")
            entry = {k: copy.deepcopy(v) for k, v in exp.items() if k not in ("decorrelate", "compare_to")}
            entry["train"] = deep_merge(exp.get("train") or {}, {"seed": method_model_seed(seed, method)})
            entry["model_for"] = {"experiment": name, "method": method}
            entry["decorrelate"] = False
            expanded[model_name] = entry
    return expanded


def method_models(config: Mapping[str, Any], experiment: str) -> dict[str, str]:
    """Method label -> the experiment whose model explains it, for a decorrelated experiment
    (after expand_decorrelated); {} otherwise (every method uses the experiment's model)."""
    if not decorrelated(config, experiment):
        return {}
    return {m: method_model_name(experiment, m) for m in model_explained_methods(config)}


def explained(config: Mapping[str, Any], experiment: str) -> bool:
    """False for the model-only experiments of decorrelated ones: trained and evaluated, their
    models explain one method of another experiment, and they explain nothing themselves."""
    return not ((config["experiments"] or {})[experiment] or {}).get("model_for")


def _check_model_from(config: Mapping[str, Any], experiment: str, model_from: str, model: str) -> None:
    key = f"experiments.{experiment}.model_from"
    other = (config["experiments"] or {}).get(model_from)
    if other is None or model_from == experiment:
        raise ConfigError(f"{key}: {model_from!r} is not another experiment "
                          f"({', '.join(sorted(e for e in config['experiments'] if e != experiment))})")
    if other.get("model_from"):
        raise ConfigError(f"{key}: experiment {model_from!r} takes its model from {other['model_from']!r} "
                          f"itself; name {other['model_from']!r} instead")
    if other["model"] != model:
        raise ConfigError(f"{key}: experiment {model_from!r} trains model {other['model']!r}, but "
                          f"experiments.{experiment}.model is {model!r}; they must be the same")
    if exp_train := config["experiments"][experiment].get("train"):
        raise ConfigError(f"experiments.{experiment}.train: {sorted(exp_train)} would not be used: the model "
                          f"comes from experiment {model_from!r} (model_from), nothing is trained here")


def _check_data_part(config: Mapping[str, Any], experiment: str, train: Mapping[str, Any]) -> None:
    parts, part = train.get("data_parts", 1), train.get("data_part", 0)
    if not 0 <= part < parts:
        own = "data_part" in ((config["experiments"][experiment] or {}).get("train") or {})
        key = f"experiments.{experiment}.train.data_part" if own else "train.data_part"
        raise ConfigError(f"{key}: {part} is not one of the {parts} parts (train.data_parts) of the training "
                          f"split: 0 to {parts - 1}")


def check_config(config: Mapping[str, Any]) -> None:
    """Fail early, before any job runs, on cross-reference errors the schema cannot see."""
    for name in config["experiments"]:
        settings = experiment_settings(config, name)
        _check_data_part(config, name, settings["train"])
        if has_no_classes(config, name):
            _check_experiment_without_classes(config, name, settings)
    for name, dataset in config["datasets"].items():
        check_dataset_options(name, dataset)
    for name, model in config["models"].items():
        check_model_options(name, model)
        if model.get("normalization") and not model.get("checkpoint"):
            raise ConfigError(
                f"models.{name}.normalization is only used with models.{name}.checkpoint "
                "(trained models record their own normalisation)"
            )
    explain_methods(config)
    assess_metrics(config)
    for section, settings in (("evaluate", EvaluateSettings), ("explain", ExplainSettings),
                              ("assess", AssessSettings), ("tracking", TrackingSettings)):
        try:
            settings.from_dict(config.get(section))
        except (TypeError, ValueError) as err:
            raise ConfigError(str(err)) from None


# Dataset formats whose images carry no class: they can only be predicted and explained.
FORMATS_WITHOUT_CLASSES = frozenset({"images"})


def has_no_classes(config: Mapping[str, Any], experiment: str) -> bool:
    """True when the experiment's dataset is a folder of images without classes."""
    dataset = config["experiments"][experiment]["dataset"]
    return config["datasets"][dataset]["format"] in FORMATS_WITHOUT_CLASSES


def _check_experiment_without_classes(config: Mapping[str, Any], name: str, settings: Mapping[str, Any]) -> None:
    dataset = settings["dataset"]
    if not settings["model"].get("checkpoint"):
        raise ConfigError(
            f"experiments.{name}: dataset {dataset!r} has images without classes, so there is nothing "
            f"to train on; give models.{settings['model_name']}.checkpoint (bring your own model)"
        )
    if (config.get("explain") or {}).get("target") == "true":
        raise ConfigError(
            f"explain.target: 'true' needs images with a class, but experiment {name!r} explains "
            f"dataset {dataset!r}, which has none; use 'predicted' or 'class'"
        )


def check_dataset_options(name: str, dataset: Mapping[str, Any]) -> None:
    """Every adapter option of dataset `name` checked from the config alone (names, types,
    choices, regexes), against ferxai.data.options: no adapter module, pandas or PIL is imported,
    since this runs on every snakemake call. What needs the data is left to the manifest rule."""
    from ferxai.data.options import OptionError, check_options

    options = dataset.get("options") or {}
    where = f"datasets.{name}.options"
    if dataset["format"] == "synthetic":
        from ferxai.data.synthetic import SyntheticConfig

        try:
            SyntheticConfig.from_dict(options)
        except ValueError as err:
            raise ConfigError(f"{where}: {err}") from None
        return
    try:
        check_options(dataset["format"], options)
    except OptionError as err:
        raise ConfigError(f"{where}.{err.key}: {err}" if err.value else f"{where}: {err}") from None


def check_model_options(name: str, model: Mapping[str, Any]) -> None:
    from ferxai.models.catalog import ModelConfigError, model_options

    try:
        allowed = model_options(model["arch"])
    except ModelConfigError as err:
        raise ConfigError(f"models.{name}.arch: {err}") from None
    unknown = sorted(set(model.get("options") or {}) - set(allowed))
    if unknown:
        raise ConfigError(
            f"models.{name}.options: unknown option(s) {unknown} for arch {model['arch']!r}; "
            f"valid: {', '.join(sorted(allowed)) or 'none'}"
        )


def explain_methods(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The configured explanation methods: label -> {"method": registry name, "params": {...}}.

    A label is the registry name itself (`saliency: {}`) or any name with a `method:` key, so
    one method can run with several settings (`ig_blur: {method: integrated_gradients, baseline: blur}`).
    Parameters are checked against the method catalog here, before any job runs: names, types,
    ranges and choices; the error's key is `explain.methods.<label>.<param>`.
    """
    from ferxai.explain import catalog
    from ferxai.explain.params import ExplainerConfigError

    methods = {}
    for label, entry in ((config.get("explain") or {}).get("methods") or {}).items():
        params = dict(entry or {})
        named = "method" in params
        name = params.pop("method", label)
        try:
            catalog.check_params(name, params)
        except ExplainerConfigError as err:
            param = "method" if err.param is None and named else err.param
            key = f"explain.methods.{label}" + (f".{param}" if param else "")
            raise ConfigError(f"{key}: {err}") from None
        methods[label] = {"method": name, "params": params}
    return methods


# per-image files the scoring stage writes beside the metrics' (ferxai.assess.files)
RESERVED_SCORE_NAMES = ("randomisation", "robustness")


def assess_metrics(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The configured explanation metrics: label -> {"metric", "family", "direction", "params"},
    parameters resolved with the catalog's defaults (so a changed default reruns its jobs).

    As with methods, a label is the catalog name (`deletion: {}`) or any name with a `metric:`
    key (`deletion_lerf: {metric: deletion, order: least}`). Checked here, before any job runs:
    names, parameter types and ranges (key `assess.metrics.<label>.<param>`), and that every
    experiment has ground-truth masks when a localisation metric is asked for.
    """
    from ferxai.assess import catalog

    metrics = {}
    for label, entry in ((config.get("assess") or {}).get("metrics") or {}).items():
        params = dict(entry or {})
        named = "metric" in params
        name = params.pop("metric", label)
        key = f"assess.metrics.{label}"
        if label in RESERVED_SCORE_NAMES:
            raise ConfigError(f"{key}: {label!r} names the {label} check's own file; give the metric "
                              f"another label (with `metric: {name}`)")
        try:
            metric = catalog.get(name)
            resolved = metric.resolve(params)
        except catalog.MetricConfigError as err:
            param = "metric" if err.param is None and named else err.param
            raise ConfigError(f"{key}{'.' + param if param else ''}: {err}") from None
        if "masks" in metric.needs:
            from ferxai.data.options import provides_masks

            for experiment, exp in (config.get("experiments") or {}).items():
                dataset = config["datasets"][exp["dataset"]]
                if not provides_masks(dataset["format"], dataset.get("options") or {}):
                    raise ConfigError(
                        f"{key}: metric {name!r} scores maps against ground-truth masks, but experiment "
                        f"{experiment!r} explains dataset {exp['dataset']!r} (format {dataset['format']!r}), "
                        "which has none; give the dataset masks (README, \"Your own data\") or remove the metric")
        metrics[label] = {"metric": name, "family": metric.family, "direction": metric.direction_for(resolved),
                          "params": resolved}
    return metrics
