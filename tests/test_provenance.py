"""Code fingerprints (ferxai.provenance): what a job's code is, read statically from the source."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ferxai import provenance
from ferxai.provenance import code_fingerprint, module_closure


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture()
def tree(tmp_path):
    """A small ferxai package: a script -> pipeline -> (lazily) method -> shared helper."""
    root = tmp_path / "src"
    write(root, "ferxai/__init__.py", "")
    write(root, "ferxai/explain/__init__.py", "")
    write(root, "ferxai/explain/pipeline.py", """
        import numpy as np
        from . import shared

        def run():
            from ferxai.explain.methods import gradcam  # lazy: runs when the job runs
            return gradcam
        """)
    write(root, "ferxai/explain/shared.py", """
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            from ferxai.explain import only_for_types
        """)
    write(root, "ferxai/explain/only_for_types.py", "")
    write(root, "ferxai/explain/methods/__init__.py", "")
    write(root, "ferxai/explain/methods/gradcam.py", "from ..shared import *\nimport pytorch_grad_cam\n")
    write(root, "ferxai/explain/methods/saliency.py", "import captum\n")
    write(root, "ferxai/train.py", "import torch\n")
    script = write(tmp_path, "workflow/scripts/attribute.py", "from ferxai.explain.pipeline import run\n")
    return root, script


def test_closure_follows_relative_lazy_and_parent_imports_but_not_type_checking(tree):
    root, script = tree
    modules, external = module_closure([script], root)
    assert set(modules) == {"ferxai", "ferxai.explain", "ferxai.explain.pipeline", "ferxai.explain.shared",
                            "ferxai.explain.methods", "ferxai.explain.methods.gradcam"}
    assert external == {"numpy", "pytorch_grad_cam"}


def test_fingerprint_changes_with_the_code_a_job_reaches_only(tree):
    root, script = tree
    before = code_fingerprint(script, root=root)
    with_saliency = code_fingerprint(script, "ferxai.explain.methods.saliency", root=root)
    assert with_saliency != before

    (root / "ferxai/train.py").write_text("import torch\n# unrelated edit\n")
    (root / "ferxai/explain/methods/saliency.py").write_text("import captum\n# edit\n")
    assert code_fingerprint(script, root=root) == before

    (root / "ferxai/explain/shared.py").write_text("# a fix in a shared module\n")
    assert code_fingerprint(script, root=root) != before


def test_fingerprint_includes_the_installed_version_of_imported_packages(tree, monkeypatch):
    root, script = tree
    before = code_fingerprint(script, root=root)
    real = provenance.metadata.version

    def upgraded(name):
        return "99.0" if name == "grad-cam" else real(name)

    provenance.installed_version.cache_clear()
    monkeypatch.setattr(provenance.metadata, "version", upgraded)
    try:
        assert code_fingerprint(script, root=root) != before
    finally:
        provenance.installed_version.cache_clear()


def test_fingerprints_of_the_real_scripts_import_nothing_heavy():
    code = textwrap.dedent("""
        import sys
        from pathlib import Path
        from ferxai.provenance import code_fingerprint
        for script in sorted(Path("workflow/scripts").glob("*.py")):
            code_fingerprint(script, "ferxai.explain.methods.gradcam")
        heavy = sorted(m for m in ("torch", "numpy", "pandas", "captum", "pytorch_grad_cam") if m in sys.modules)
        print(heavy)
        """)
    repo = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_in_a_catalog_table_only_the_jobs_own_entry_counts(tree):
    root, script = tree
    catalog = write(root, "ferxai/explain/catalog.py", """
        def entry(name, size):
            return (name, size)


        ENTRIES = (
            entry("gradcam", 1),
            entry("saliency", 2),
        )
        """)
    (root / "ferxai/explain/methods/gradcam.py").write_text("from ferxai.explain import catalog\n")
    tables = (("ferxai.explain.catalog", "ENTRIES"),)

    def fingerprint():
        return code_fingerprint(script, root=root, tables=tables, keep=("gradcam",))

    before = fingerprint()
    text = catalog.read_text()
    catalog.write_text(text.replace('entry("saliency", 2),', 'entry("saliency", 3),\n    entry("new", 1),'))
    assert fingerprint() == before  # another method's entry changed, one was added
    catalog.write_text(catalog.read_text().replace('entry("gradcam", 1)', 'entry("gradcam", 5)'))
    changed = fingerprint()
    assert changed != before
    catalog.write_text(catalog.read_text().replace("return (name, size)", "return (size, name)"))
    assert fingerprint() != changed  # code outside the table counts for every entry


def _forget_parsed_files():
    """What a new process starts with: no parsed sources in memory."""
    provenance._parsed.cache_clear()
    provenance._edges_of.cache_clear()


def test_imports_kept_in_a_cache_folder_give_the_same_fingerprint_without_parsing(tree, tmp_path, monkeypatch):
    root, script = tree
    cache = tmp_path / "cache"
    plain = code_fingerprint(script, root=root)
    _forget_parsed_files()
    assert code_fingerprint(script, root=root, cache=cache) == plain
    reached = len(module_closure([script], root)[0]) + 1  # and the script
    assert len(list(cache.iterdir())) == reached

    _forget_parsed_files()

    def no_parsing(*args, **kwargs):
        raise AssertionError("parsed a source whose imports are in the cache")

    monkeypatch.setattr(provenance.ast, "parse", no_parsing)
    assert code_fingerprint(script, root=root, cache=cache) == plain
    monkeypatch.undo()

    # an edit is a new entry: the old one describes the old text only
    (root / "ferxai/explain/shared.py").write_text("import scipy\n")
    _forget_parsed_files()
    edited = code_fingerprint(script, root=root, cache=cache)
    assert edited != plain
    _forget_parsed_files()
    assert edited == code_fingerprint(script, root=root)
    assert len(list(cache.iterdir())) == reached + 1


def test_an_incomplete_cache_entry_is_parsed_again(tree, tmp_path):
    root, script = tree
    cache = tmp_path / "cache"
    _forget_parsed_files()
    plain = code_fingerprint(script, root=root, cache=cache)
    pipeline = next(e for e in cache.iterdir() if "numpy" in e.read_text())
    pipeline.write_text(pipeline.read_text().rsplit("\n", 2)[0])  # a write cut short: no end line
    _forget_parsed_files()
    assert code_fingerprint(script, root=root, cache=cache) == plain
    assert pipeline.read_text().endswith("\nend")


def test_a_cache_folder_that_cannot_be_written_only_costs_a_parse(tree, tmp_path):
    root, script = tree
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    _forget_parsed_files()
    plain = code_fingerprint(script, root=root)
    _forget_parsed_files()
    assert code_fingerprint(script, root=root, cache=blocked / "cache") == plain
