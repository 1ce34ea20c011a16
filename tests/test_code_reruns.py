"""Library code is part of what a result depends on: editing a method's file reruns that method's
jobs only, editing training code reruns training and what follows (the real snakemake, on a tiny
copy of the workflow with its own src/)."""

from __future__ import annotations

import json
import os
import re
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import REPO
from tinyflow import TINY, add_default_profile, add_library, make_workdir, planned_jobs, planned_rules, snakemake

RULE_FILES = sorted((Path(REPO) / "workflow" / "rules").glob("*.smk"))


def rule_blocks():
    for path in RULE_FILES:
        for block in re.split(r"(?m)^(?=(?:rule|checkpoint) )", path.read_text()):
            match = re.match(r"(?:rule|checkpoint) (\w+):", block)
            if match:
                yield match.group(1), block


def test_every_rule_with_a_script_records_its_code():
    blocks = dict(rule_blocks())
    assert blocks, "no rules found"
    for name, block in blocks.items():
        script = re.search(r'script:\n\s+"\.\./scripts/(\w+\.py)"', block)
        if script is None:
            continue
        code = re.search(r"code=(code_of|job_code)\(\"(\w+\.py)\"", block)
        assert code, f"rule {name} has no code= param"
        assert code.group(2) == script.group(1), f"rule {name}: code of {code.group(2)}, script {script.group(1)}"


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("home")


def with_home(home: Path) -> dict[str, str]:
    env = {**os.environ, "HOME": str(home)}
    for key in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "MPLCONFIGDIR"):
        env.pop(key, None)
    return env


@pytest.fixture(scope="module")
def built(tmp_path_factory, home):
    """The tiny workflow with its own src/ and the default profile, built with HOME set to an
    empty folder."""
    workdir = add_default_profile(add_library(make_workdir(tmp_path_factory.mktemp("code"),
                                                           json.loads(json.dumps(TINY)))))
    snakemake(workdir, env=with_home(home))
    return workdir


@pytest.mark.slow
def test_nothing_is_written_under_the_users_home(built, home):
    snakemake(built, "-n", env=with_home(home))
    assert sorted(p.relative_to(home) for p in home.rglob("*")) == []


@contextmanager
def edited(path: Path):
    """`path` with a comment appended (new code, same behaviour), restored afterwards."""
    original = path.read_text()
    path.write_text(original + "\n# an edit that changes the code, not what it does\n")
    try:
        yield
    finally:
        path.write_text(original)


@pytest.mark.slow
def test_editing_a_method_reruns_that_methods_jobs_only(built):
    with edited(built / "src/ferxai/explain/methods/gradcam.py"):
        jobs = planned_jobs(built)
        per_method = [wc for rule, wc in jobs if "method=" in wc]
        assert per_method and all("method=gradcam" in wc for wc in per_method)
        # plus the run records, which name the store
        assert {rule for rule, _ in jobs} == {"preflight", "attribute", "gather_attributions",
                                              "explanation_store", "method_grids", "run_record", "runs_table"}
    assert planned_rules(built) == set()


@pytest.mark.slow
def test_editing_training_code_reruns_training_and_what_follows(built):
    with edited(built / "src/ferxai/train.py"):
        rules = planned_rules(built)
        assert {"train", "evaluate"} <= rules
        assert not rules & {"synthesize_dataset", "manifest", "splits"}
    assert planned_rules(built) == set()


@pytest.mark.slow
def test_editing_an_adapter_reruns_the_manifest(built):
    with edited(built / "src/ferxai/data/adapters/synthetic.py"):
        assert "manifest" in planned_rules(built)


@pytest.mark.slow
def test_editing_model_code_reruns_the_experiments_of_that_architecture_only(built):
    # TINY's model is fer_cnn: its family module and the checkpoint code matter, ResNet's does not
    with edited(built / "src/ferxai/models/resnet.py"):
        assert planned_rules(built) == set()
    with edited(built / "src/ferxai/models/checkpoint.py"):
        assert {"train", "evaluate", "explain_inputs"} <= planned_rules(built)
    with edited(built / "src/ferxai/models/fer_cnn.py"):
        assert "train" in planned_rules(built)


@pytest.mark.slow
def test_adding_or_editing_a_catalog_entry_reruns_that_methods_jobs_only(built):
    catalog = built / "src/ferxai/explain/catalog.py"
    original = catalog.read_text()
    entry = '    _cam("gradcam", "GradCAM"),\n'
    assert entry in original
    try:
        # a new method: one more entry, nothing configured uses it
        catalog.write_text(original.replace(entry, entry + '    _cam("gradcam_copy", "GradCAM"),\n'))
        assert planned_rules(built) == set()
        # Grad-CAM's own entry
        catalog.write_text(original.replace(entry, '    _cam("gradcam", "GradCAM", extra=1),\n'))
        jobs = planned_jobs(built)
        assert all("method=gradcam" in wc for rule, wc in jobs if "method=" in wc)
        assert {rule for rule, _ in jobs} >= {"preflight", "explanation_store"}
    finally:
        catalog.write_text(original)
    assert planned_rules(built) == set()
