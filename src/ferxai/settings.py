"""The evaluation and explanation settings, with their defaults stated here and nowhere else.

config/schema.yaml checks the shape and range of what a user writes; these dataclasses say what an
unset key means. The Snakefile resolves the config through them (so jobs receive complete
settings and a changed default reruns what it changes), and the library functions take them.
``tests/test_settings.py`` keeps the schema's property names, and any default it states, in step
with the fields here.

Stdlib only: the Snakefile builds these on every ``snakemake`` call.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field, fields
from typing import Any, Mapping, TypeVar

S = TypeVar("S", bound="Settings")


class Settings:
    """``from_dict`` / ``to_dict`` for a frozen dataclass of plain values and nested Settings."""

    section: str = ""  # config key, for messages

    @classmethod
    def from_dict(cls: type[S], values: Mapping[str, Any] | S | None) -> S:
        if isinstance(values, cls):
            return values
        values = dict(values or {})
        known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"{cls.section}: unknown key(s) {unknown}; known: {sorted(known)}")
        for f in known.values():
            if f.name not in values:
                continue
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            if isinstance(default, Settings):
                values[f.name] = type(default).from_dict(values[f.name])
            elif isinstance(values[f.name], list):
                values[f.name] = tuple(values[f.name])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-like values (tuples as lists), e.g. for a Snakemake param."""
        def plain(value: Any) -> Any:
            if isinstance(value, Settings):
                return value.to_dict()
            if isinstance(value, (tuple, list)):
                return [plain(v) for v in value]
            if isinstance(value, Mapping):
                return {k: plain(v) for k, v in value.items()}
            return value

        return {f.name: plain(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]


@dataclass(frozen=True)
class EvaluateSettings(Settings):
    section = "evaluate"

    batch_size: int = 256
    device: str = "auto"


@dataclass(frozen=True)
class PreflightSettings(Settings):
    """How each method's batch size is measured (ferxai.explain.preflight)."""

    section = "explain.preflight"

    # Candidates are capped by the images of the job they size; on a CPU small batches often
    # win, on a GPU large ones do, so the range covers both.
    batch_sizes: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)
    memory_budget_mb: float = 4000.0
    min_seconds: float = 0.5


@dataclass(frozen=True)
class ExplainSettings(Settings):
    section = "explain"

    scope: str = "sets"
    sets: tuple[str, ...] = ("high_confidence", "low_confidence", "misclassified")
    num_each: int = 4
    target: str = "predicted"
    target_class: str | None = None
    output: str = "logits"
    conditions: tuple[str, ...] = ("clean",)
    # Attribution jobs per (condition, method), each explaining an equal part of the selected images
    # (ferxai.explain.shards). A count rather than a size, so the whole DAG follows from the config.
    shards: int = 1
    seed: int = 0
    device: str = "auto"
    preflight: PreflightSettings = field(default_factory=PreflightSettings)
    overlay: Mapping[str, Any] = field(default_factory=dict)  # keyword arguments of plots.attribution.overlay
    runner_layout: bool = False
    # A method that raises while explaining: "record" writes its maps as NaN with the reason (the
    # gallery, store and scorecard show it failed, and every other method goes on); "stop" fails
    # the job as any error does.
    on_error: str = "record"
    # Every method's maps from its own model, trained like the experiment's with another seed, so
    # that no two methods share a model (ferxai.config.expand_decorrelated); controls, which
    # ignore the model, keep the experiment's. experiments.<name>.decorrelate overrides it.
    decorrelate: bool = False
    methods: Mapping[str, Any] = field(default_factory=dict)  # label -> parameters (explain.catalog)

    def selection(self) -> dict[str, Any]:
        """What choosing the images to explain depends on."""
        return {"scope": self.scope, "sets": list(self.sets), "num_each": self.num_each}

    def run(self) -> dict[str, Any]:
        """What every attribution job of a method depends on besides the method's own parameters."""
        keys = ("target", "target_class", "output", "seed", "device", "shards", "preflight", "on_error")
        full = self.to_dict()
        return {key: full[key] for key in keys}


@dataclass(frozen=True)
class RandomisationSettings(Settings):
    """The cascading model-randomisation sanity check (ferxai.assess.randomisation)."""

    section = "assess.randomisation"

    # The first `images` explained images of the first condition: each cascade step recomputes
    # every method's maps, the stage's most expensive part. 0 turns the check off.
    images: int = 4
    top_k: float = 0.1  # share of pixels compared by top-k IoU
    seed: int = 0


@dataclass(frozen=True)
class RobustnessSettings(Settings):
    """Agreement of each noise condition's maps with the first condition's (ferxai.assess.similarity)."""

    section = "assess.robustness"

    top_k: float = 0.1


@dataclass(frozen=True)
class AgreementSettings(Settings):
    """Agreement of an experiment's maps with those of the experiment it is compared to
    (`compare_to`, replicates; ferxai.assess.agreement)."""

    section = "assess.agreement"

    top_k: float = 0.1


@dataclass(frozen=True)
class IntervalSettings(Settings):
    """Bootstrap intervals of every mean score (ferxai.assess.intervals)."""

    section = "assess.intervals"

    resamples: int = 1000
    level: float = 0.95
    seed: int = 0


@dataclass(frozen=True)
class AssessSettings(Settings):
    section = "assess"

    # What faithfulness metrics read off the model: class probabilities keep removal curves in
    # [0, 1] and comparable across images, whatever the explanations attributed.
    output: str = "softmax"
    device: str = "auto"
    metrics: Mapping[str, Any] = field(default_factory=dict)  # label -> parameters (assess.catalog)
    randomisation: RandomisationSettings = field(default_factory=RandomisationSettings)
    robustness: RobustnessSettings = field(default_factory=RobustnessSettings)
    agreement: AgreementSettings = field(default_factory=AgreementSettings)
    intervals: IntervalSettings = field(default_factory=IntervalSettings)

    def run(self) -> dict[str, Any]:
        """What every model-running scoring job depends on besides its metrics' parameters."""
        return {"output": self.output, "device": self.device}


@dataclass(frozen=True)
class TrackingSettings(Settings):
    """Logging of the run records (results/runs.csv) to an MLflow tracking server
    (ferxai.tracking); off while `mlflow_uri` is None."""

    section = "tracking"

    mlflow_uri: str | None = None  # e.g. http://127.0.0.1:5000, sqlite:////abs/path/mlflow.db
    experiment_name: str = "ferxai"  # the MLflow experiment the runs go to

    def __post_init__(self) -> None:
        if self.mlflow_uri is not None and not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", self.mlflow_uri):
            raise ValueError(f"tracking.mlflow_uri: {self.mlflow_uri!r} is not a URI with a scheme, e.g. "
                             "http://host:5000 or sqlite:////absolute/path/mlflow.db")
        if not self.experiment_name.strip():
            raise ValueError("tracking.experiment_name: empty; name the MLflow experiment the runs go to")


def config_hash(settings: Any) -> str:
    """Stable short hash of JSON-like settings (key order does not matter)."""
    blob = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


__all__ = ["AgreementSettings", "AssessSettings", "EvaluateSettings", "ExplainSettings", "IntervalSettings",
           "PreflightSettings", "RandomisationSettings", "RobustnessSettings", "Settings", "TrackingSettings",
           "config_hash"]
