"""Adapter options: one description (ferxai.data.options) for the config check and the adapters."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from ferxai.config import ConfigError, check_config, deep_merge
from ferxai.data.adapters import ADAPTERS, build_manifest, get_adapter
from ferxai.data.manifest import ManifestError
from ferxai.data.options import FORMATS

EXAMPLES = sorted((Path(REPO) / "config" / "examples").glob("*.yaml"))


def default_config() -> dict:
    return yaml.safe_load((Path(REPO) / "config" / "config.yaml").read_text())


def with_dataset(fmt: str, options: dict) -> dict:
    cfg = default_config()
    cfg["datasets"]["mine"] = {"format": fmt, "options": options}
    return cfg


@pytest.mark.parametrize("fmt", sorted(ADAPTERS))
def test_description_matches_adapter_signature(fmt):
    """The adapters and the config check read one description; it must be the adapter's real one."""
    params = [p for p in inspect.signature(get_adapter(fmt)).parameters.values()
              if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    assert [p.name for p in params] == [o.name for o in FORMATS[fmt]]
    for param, opt in zip(params, FORMATS[fmt]):
        assert (param.default is param.empty) == opt.required, opt.name
        if not opt.required:
            assert param.default == opt.default, opt.name


def test_misspelt_label_mode_is_named_at_config_check_with_its_choices():
    cfg = with_dataset("ferplus", {"fer2013_csv": "a.csv", "ferplus_csv": "b.csv", "label_mode": "majorty"})
    with pytest.raises(ConfigError, match=r"^datasets\.mine\.options\.label_mode: .*'majorty'") as info:
        check_config(cfg)
    for choice in ("majority", "plurality", "drop_ties"):
        assert choice in str(info.value)
    assert info.value.key == "datasets.mine.options.label_mode"


@pytest.mark.parametrize("fmt, options, key, message", [
    ("folder", {"root": 3}, "root", r"must be a folder path"),
    ("folder", {"root": ""}, "root", r"must be a folder path"),
    ("folder", {"root": "d", "classes": "happy"}, "classes", r"must be a list of names, got 'happy'"),
    ("folder", {"root": "d", "classes": ["happy", "happy"]}, "classes", r"distinct, non-empty names"),
    ("folder", {"root": "d", "classes": ["happy", ""]}, "classes", r"distinct, non-empty names"),
    ("folder", {"root": "d", "classes": ["happy", {"sad": 1}]}, "classes", r"must list names"),
    ("folder", {"root": "d", "subject_pattern": r"S\d+"}, "subject_pattern", r"has no \(\?P<subject>\.\.\.\) group"),
    ("folder", {"root": "d", "subject_pattern": "(?P<subject>S"}, "subject_pattern", r"is not a regex"),
    ("folder", {"root": "d", "subject_pattern": 5}, "subject_pattern", r"must be a regex"),
    ("images", {"root": "d", "classes": []}, "classes", r"distinct, non-empty names"),
    ("fer2013_csv", {"path": ["a.csv"]}, "path", r"must be a file path"),
    ("ferplus", {"fer2013_csv": "a.csv", "ferplus_csv": None}, "ferplus_csv", r"must be a file path"),
    ("ferplus", {"fer2013_csv": "a.csv", "ferplus_csv": "b.csv", "label_mode": None}, "label_mode", r"one of"),
    ("npz", {"path": "x.npz", "classes": [0.5, 1.5]}, "classes", r"must list names"),
    ("csv", {"path": "x.csv", "classes": "a,b"}, "classes", r"must be a list of names"),
    ("folder", {"root": "d", "masks": 3}, "masks", r"must be a folder path"),
    ("folder", {"root": "d", "masks": ""}, "masks", r"must be a folder path"),
    ("images", {"root": "d", "classes": ["a"], "masks": ["m"]}, "masks", r"must be a folder path"),
    ("csv", {"path": "x.csv", "mask_column": 2}, "mask_column", r"must be a column name"),
    ("csv", {"path": "x.csv", "mask_column": " "}, "mask_column", r"must be a column name"),
])
def test_every_option_value_is_checked_at_config_check(fmt, options, key, message):
    with pytest.raises(ConfigError, match=rf"^datasets\.mine\.options\.{key}: .*{message}"):
        check_config(with_dataset(fmt, options))
    # The adapter refuses the same value with the same words (it reads the same description).
    with pytest.raises(ManifestError, match=message):
        build_manifest(fmt, options)


@pytest.mark.parametrize("fmt, options, message", [
    ("images", {"root": "d"}, r"missing required option\(s\) \['classes'\]"),
    ("folder", {"root": "d", "clases": ["a"]}, r"unknown option\(s\) \['clases'\]; valid options: root, classes, "
                                                r"subject_pattern"),
    ("folder", {"root": "d", "mask": "m"}, r"unknown option\(s\) \['mask'\]; valid options: root, classes, "
                                           r"subject_pattern, masks"),
    ("csv", {"path": "x.csv", "masks": "m"}, r"unknown option\(s\) \['masks'\]; valid options: path, classes, "
                                             r"mask_column"),
])
def test_unknown_and_missing_options_name_the_valid_ones(fmt, options, message):
    with pytest.raises(ConfigError, match=rf"^datasets\.mine\.options.*{message}"):
        check_config(with_dataset(fmt, options))


def test_valid_values_pass_and_numbers_are_class_names():
    check_config(with_dataset("npz", {"path": "x.npz", "classes": [0, 1, 2]}))
    check_config(with_dataset("folder", {"root": "d", "subject_pattern": None}))
    check_config(with_dataset("folder", {"root": "d", "subject_pattern": ""}))
    check_config(with_dataset("folder", {"root": "d", "masks": "m"}))
    check_config(with_dataset("csv", {"path": "x.csv", "mask_column": "mask"}))


def test_config_check_imports_no_adapter_pandas_or_pil():
    """The config check runs on every snakemake call: every example config (and every format) is
    checked without importing an adapter module, pandas, PIL or torch."""
    configs = []
    for example in EXAMPLES:
        cfg = yaml.safe_load(example.read_text())
        configs.append(cfg if "models" in cfg else deep_merge(default_config(), cfg))  # else an overlay
    every_format = default_config()
    every_format["datasets"].update({
        "f": {"format": "folder", "options": {"root": "d", "classes": ["a", "b"], "masks": "m"}},
        "i": {"format": "images", "options": {"root": "d", "classes": ["a"], "masks": "m"}},
        "c": {"format": "fer2013_csv", "options": {"path": "fer.csv"}},
        "p": {"format": "ferplus",
              "options": {"fer2013_csv": "a.csv", "ferplus_csv": "b.csv", "label_mode": "plurality"}},
        "n": {"format": "npz", "options": {"path": "x.npz"}},
        "u": {"format": "csv", "options": {"path": "x.csv", "mask_column": "mask"}},
    })
    configs.append(every_format)
    code = (
        "import json, sys\n"
        "from ferxai.config import check_config\n"
        "for cfg in json.loads(sys.stdin.read()):\n"
        "    check_config(cfg)\n"
        "from ferxai.data.options import provides_masks\n"
        "assert any(provides_masks(d['format'], d.get('options')) for d in cfg['datasets'].values())\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('pandas', 'PIL', 'torch')\n"
        "               or m.startswith('ferxai.data.adapters'))\n"
        "assert not heavy, f'config check imported {heavy}'\n"
    )
    import json

    done = subprocess.run([sys.executable, "-c", code], input=json.dumps(configs), capture_output=True, text=True,
                          env={"PYTHONPATH": str(Path(REPO) / "src"), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
