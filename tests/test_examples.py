"""Every config/examples file, with small data laid out the way it expects, under the real snakemake
in an environment like make run's (`pip install -e '.[workflow]'`: no SLURM plugin, no DVC).

The test environment has every extra installed, and the SLURM plugin imports pandas as Snakemake
starts; code that breaks only in a process without pandas (or that imports what it should not)
passes there and fails for a user. So snakemake runs here in a lean view of the installed
distributions (tests/leanenv.py), and the first test proves the view is what it claims.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

import leanenv
from conftest import REPO
from ferxai.classes import FER2013_CLASSES, FERPLUS_CLASSES
from tinyflow import add_library, make_workdir

pytestmark = pytest.mark.slow

EXAMPLES = sorted((Path(REPO) / "config" / "examples").glob("*.yaml"))
RNG = np.random.default_rng(11)


@pytest.fixture(scope="session")
def lean_python(tmp_path_factory) -> Path:
    return leanenv.build(tmp_path_factory.mktemp("lean") / "venv", Path(REPO) / "src")


def run(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), *args], cwd=cwd, capture_output=True, text=True,
                          env=leanenv.environment(python))


def test_lean_environment_is_make_runs(lean_python, tmp_path):
    """No SLURM plugin or DVC, pandas not imported when Snakemake starts, ferxai from src/."""
    for module in ("snakemake_executor_plugin_slurm", "dvc", "moto", "pytest"):
        probe = run(lean_python, "-c", f"import {module}", cwd=tmp_path)
        assert probe.returncode != 0 and "ModuleNotFoundError" in probe.stderr, module
    probe = run(lean_python, "-c", "import ferxai, snakemake, torch, pandas, PIL; print(ferxai.__file__)", cwd=tmp_path)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == str(Path(REPO) / "src" / "ferxai" / "__init__.py")
    (tmp_path / "Snakefile").write_text(
        'import sys\nprint("pandas imported at start:", "pandas" in sys.modules)\n'
        'rule all:\n    output: "x"\n    shell: "touch x"\n')
    started = run(lean_python, "-m", "snakemake", "--dry-run", "--cores", "1", cwd=tmp_path)
    assert started.returncode == 0, started.stderr
    assert "pandas imported at start: False" in started.stdout


# --------------------------------------------------------------------------- data layouts
# Each writes, under a workdir, what its example's paths point at, and returns
# {dataset: (number of manifest rows expected, class list expected)}.


def gray(size=48) -> np.ndarray:
    return RNG.integers(0, 256, (size, size), dtype=np.uint8)


def rgb(size) -> np.ndarray:
    return RNG.integers(0, 256, (size, size, 3), dtype=np.uint8)


def save(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def fer2013_csv(path: Path, n_per_usage: int = 3) -> list[str]:
    """fer2013.csv with every class in every Usage; returns the Usage of each data row."""
    usages = [u for u in ("Training", "PublicTest", "PrivateTest") for _ in range(n_per_usage * 7)]
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [f"{k % 7},{' '.join(map(str, gray().ravel()))},{usage}" for k, usage in enumerate(usages)]
    path.write_text("emotion,pixels,Usage\n" + "\n".join(rows) + "\n")
    return usages


CKPLUS_CLASSES = ["anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise"]


def ckplus_folder(root: Path) -> int:
    """CK+ Kaggle pack: <class>/S<subject>_<sequence>_<frame>.png, 8 subjects."""
    n = 0
    for c, cls in enumerate(CKPLUS_CLASSES):
        for subject in range(1, 9):
            for frame in (11, 12):
                save(root / cls / f"S{subject:03d}_{c + 1:03d}_{frame:08d}.png", gray())
                n += 1
    return n


def state_dict(path: Path, classes: int) -> None:
    import torch

    from ferxai.models import build_model

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(build_model("resnet18", classes, 1, 48).state_dict(), path)


def layout_fer2013(work: Path) -> dict:
    fer2013_csv(work / "data" / "fer2013" / "fer2013.csv")
    return {"fer2013": (63, list(FER2013_CLASSES))}


def layout_ferplus(work: Path) -> dict:
    usages = fer2013_csv(work / "data" / "fer2013" / "fer2013.csv")
    lines = []
    for k, usage in enumerate(usages):
        votes = [0] * 10
        if k % 9 == 8:
            votes[8] = 7  # "unknown" wins: dropped by design, not a reject
        else:
            votes[k % 8] = 8
        votes[(k + 1) % 8] += 2
        lines.append(f"{usage},fer{k:07d}.png," + ",".join(map(str, votes)))
    path = work / "data" / "ferplus" / "fer2013new.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n"
                    + "\n".join(lines) + "\n")
    return {"ferplus": (63 - 63 // 9, list(FERPLUS_CLASSES))}


def layout_fer2013_folders(work: Path) -> dict:
    root = work / "data" / "fer2013_images"
    for split, n in (("train", 6), ("test", 2)):
        for cls in FER2013_CLASSES:
            for i in range(n):
                save(root / split / cls / f"{split}_{i:05d}.jpg", gray())
    return {"fer2013_images": (56, list(FER2013_CLASSES))}


def layout_ckplus(work: Path) -> dict:
    return {"ckplus": (ckplus_folder(work / "data" / "ckplus"), CKPLUS_CLASSES)}


def layout_medmnist(work: Path) -> dict:
    arrays = {}
    for split, n in (("train", 24), ("val", 8), ("test", 8)):
        arrays[f"{split}_images"] = RNG.integers(0, 256, (n, 28, 28, 3), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 8).reshape(-1, 1)
    path = work / "data" / "medmnist" / "bloodmnist.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    names = ["basophil", "eosinophil", "erythroblast", "immature_granulocyte", "lymphocyte", "monocyte",
             "neutrophil", "platelet"]
    return {"bloodmnist": (40, names)}


def layout_affectnet_csv(work: Path) -> dict:
    classes = ["neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt"]
    base = work / "data" / "affectnet"
    lines = ["path,label,split"]
    for k in range(48):
        split = "train" if k < 32 else "val"
        name = f"images/{k:04d}.jpg"
        save(base / name, rgb(64))
        lines.append(f"{name},{classes[k % 8]},{split}")
    (base / "manifest.csv").write_text("\n".join(lines) + "\n")
    return {"affectnet": (48, classes)}


def layout_bring_your_own_model(work: Path) -> dict:
    state_dict(work / "data" / "models" / "my_resnet18_state_dict.pt", len(CKPLUS_CLASSES))
    return {"ckplus": (ckplus_folder(work / "data" / "ckplus"), CKPLUS_CLASSES)}


def layout_explain_my_photos(work: Path) -> dict:
    state_dict(work / "data" / "models" / "my_resnet18_state_dict.pt", 7)
    root = work / "data" / "my_photos"
    for i in range(4):
        save(root / f"IMG_{i:04d}.jpg", rgb(60))
        save(root / "holiday" / "day2" / f"frame{i}.png", gray(52))
    return {"my_photos": (8, ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"])}


def layout_explain_full(work: Path) -> dict:
    return {}  # an overlay on the default (synthetic) config: nothing to lay out


def layout_center_patch(work: Path) -> dict:
    return {}  # an overlay adding a generated dataset: nothing to lay out


def layout_shortcut(work: Path) -> dict:
    return {}  # an overlay adding generated datasets and experiments: nothing to lay out


def layout_model_randomisation(work: Path) -> dict:
    return {}  # an overlay adding experiments on the default dataset: nothing to lay out


def layout_disjoint_replicates(work: Path) -> dict:
    return {}  # an overlay adding experiments on the default dataset: nothing to lay out


def layout_decorrelated(work: Path) -> dict:
    return {"synthetic": (2100, list(FER2013_CLASSES))}  # a whole config on the generated default data


LAYOUTS = {name[len("layout_"):]: fn for name, fn in globals().items() if name.startswith("layout_")}
# Dry run only: the default synthetic dataset's 2,100 generated faces would not add anything here.
OVERLAYS = {"explain_full", "center_patch", "shortcut", "model_randomisation", "disjoint_replicates"}


def prepare(example: Path, work: Path) -> tuple[list[str], dict]:
    """A workdir holding the workflow, the example as its config and its data; the extra
    snakemake arguments it is run with, and what its datasets should give."""
    make_workdir(work, {})
    add_library(work)
    if example.stem in OVERLAYS:
        shutil.copy(Path(REPO) / "config" / "config.yaml", work / "config" / "config.yaml")
        args = ["--configfile", f"config/examples/{example.name}"]
    else:
        shutil.copy(example, work / "config" / "config.yaml")
        args = []
    return args, LAYOUTS[example.stem](work)


def test_every_example_has_a_layout():
    assert {e.stem for e in EXAMPLES} == set(LAYOUTS)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_example_plans_and_builds_its_data_in_make_runs_environment(example, lean_python, tmp_path):
    args, expected = prepare(example, tmp_path / "work")
    work = tmp_path / "work"
    datasets = sorted((yaml.safe_load(example.read_text()).get("datasets") or {"synthetic": None}))
    dry = run(lean_python, "-m", "snakemake", "--dry-run", "--cores", "1", *args, cwd=work)
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
    for dataset in datasets:
        assert f"dataset={dataset}" in dry.stdout, f"{example.name}: no job for dataset {dataset}"
    if example.stem in OVERLAYS:
        return
    targets = [f"results/data/{d}/splits/summary.csv" for d in datasets]
    built = run(lean_python, "-m", "snakemake", "--cores", "1", *args, *targets, cwd=work)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    for dataset, (rows, classes) in expected.items():
        out = work / "results" / "data" / dataset
        manifest = pd.read_csv(out / "manifest.csv")
        assert len(manifest) == rows, dataset
        assert json.loads((out / "classes.json").read_text()) == classes
        assert pd.read_csv(out / "rejects.csv")["counted"].sum() == 0
        split_rows = sum(len(pd.read_csv(out / "splits" / f"{s}.csv")) for s in ("train", "val", "test"))
        assert split_rows == rows
        assert (out / "splits" / "label_conflicts.csv").exists()
    again = run(lean_python, "-m", "snakemake", "--dry-run", "--cores", "1", *args, *targets, cwd=work)
    assert "Nothing to be done" in again.stdout, again.stdout[-2000:]


# --------------------------------------------------------------------------- methods


@pytest.mark.slow
def test_every_default_method_explains_an_image_in_make_runs_environment(lean_python, tmp_path):
    """Each method of the default config, with its configured parameters, on one image, in the
    lean environment: a library that needs an undeclared package (shap's blur masker needs cv2)
    fails here, not in a user's first `make run`."""
    script = textwrap.dedent(f"""
        import numpy as np, torch, yaml
        from ferxai.config import explain_methods
        from ferxai.explain.pipeline import build_explainer
        from ferxai.models.zoo import build_model
        from ferxai.settings import ExplainSettings
        config = yaml.safe_load(open({str(Path(REPO) / "config" / "config.yaml")!r}))
        torch.manual_seed(0)
        model = build_model("fer_cnn", 7, 1, 48).eval()
        x = torch.rand(1, 1, 48, 48)
        refs = {{"mean_image": np.full((1, 48, 48), 0.5, np.float32), "class_means": np.full((7, 1, 48, 48), 0.5, np.float32),
                 "reference_images": np.full((4, 1, 48, 48), 128, np.uint8)}}
        failed = []
        for label, spec in explain_methods(config).items():
            try:
                e = build_explainer(model, {{"arch": "fer_cnn"}}, spec, ExplainSettings(), refs, 16, torch.device("cpu"))
                maps = e.attribute(x, torch.tensor([3]))
                assert maps.shape == (1, 48, 48) and torch.isfinite(maps).all(), label
            except Exception as exc:
                failed.append(f"{{label}}: {{type(exc).__name__}}: {{exc}}")
        print("\\n".join(failed) or "all explained")
    """)
    done = run(lean_python, "-c", script, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("all explained"), done.stdout
