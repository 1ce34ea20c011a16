"""Static checks of the per-rule conda envs (conda channels cannot be reached here to solve them)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from conftest import REPO

ROOT = Path(REPO)
ENVS = sorted((ROOT / "envs").glob("*.yaml"))
# distribution name -> import name, for the project's own dependencies
IMPORT_NAMES = {"pillow": "PIL", "pyyaml": "yaml", "grad-cam": "pytorch_grad_cam", "scikit-image": "skimage",
                "opencv-python-headless": "cv2"}


def requirement(spec: str) -> tuple[str, str]:
    """('torch', '==2.14.1') from 'torch==2.14.1'; conda's single '=' is read as '=='."""
    m = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*(.*)$", spec)
    name, version = m.group(1).lower(), m.group(2).replace(" ", "")
    if re.match(r"^=[^=]", version):
        version = "=" + version
    return name, version


def pyproject_pins(extras: bool = False) -> dict[str, str]:
    """Pins of the dependencies; with `extras` also of the optional ones (an env for a rule that
    only runs with an extra installed, e.g. tracking), minus the extras' references to ferxai."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    if extras:
        specs += [d for group in project.get("optional-dependencies", {}).values() for d in group
                  if not d.startswith("ferxai")]
    return dict(requirement(d) for d in specs)


def env_packages(path: Path) -> dict[str, str]:
    env = yaml.safe_load(path.read_text())
    pkgs = {}
    for dep in env["dependencies"]:
        items = dep["pip"] if isinstance(dep, dict) else [dep]
        for item in items:
            if not item.startswith("-"):
                name, version = requirement(item)
                pkgs[name] = version
    return pkgs


def rules() -> list[dict]:
    """name, conda and script of every rule, read from workflow/rules/*.smk."""
    found = []
    for smk in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        for block in re.split(r"^(?=rule )", smk.read_text(), flags=re.M)[1:]:
            name = re.match(r"rule (\w+):", block).group(1)
            conda = re.search(r"^    conda:\s*\n\s*\"([^\"]+)\"", block, flags=re.M)
            script = re.search(r"^    script:\s*\n\s*\"([^\"]+)\"", block, flags=re.M)
            found.append({
                "name": name, "file": smk,
                "conda": (smk.parent / conda.group(1)).resolve() if conda else None,
                "script": (smk.parent / script.group(1)).resolve() if script else None,
            })
    return found


@pytest.mark.parametrize("env", ENVS, ids=lambda p: p.name)
def test_env_file_is_well_formed(env):
    data = yaml.safe_load(env.read_text())
    assert data["name"].startswith("ferxai-")
    assert "conda-forge" in data["channels"]
    assert any(str(d).startswith("python=") for d in data["dependencies"])


@pytest.mark.parametrize("env", ENVS, ids=lambda p: p.name)
def test_env_pins_agree_with_pyproject(env):
    pins = pyproject_pins(extras=True)
    for name, version in env_packages(env).items():
        if name in ("python", "pip"):
            continue
        assert name in pins, f"{env.name}: {name} is not a dependency in pyproject.toml"
        assert version == pins[name], f"{env.name}: {name}{version} but pyproject.toml has {name}{pins[name]}"


def test_every_rule_names_an_existing_env():
    found = [r for r in rules() if r["name"] != "all"]
    assert len(found) >= 7
    for rule in found:
        assert rule["conda"] is not None, f"rule {rule['name']} ({rule['file'].name}) has no conda: env"
        assert rule["conda"].exists(), f"rule {rule['name']}: {rule['conda']} does not exist"


def script_imports(script: Path) -> list[str]:
    tree = ast.parse(script.read_text())
    mods = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            mods.append(node.module)
    return mods


@pytest.mark.parametrize("rule", [r for r in rules() if r["script"]], ids=lambda r: r["name"])
def test_rule_code_imports_only_what_its_env_provides(rule):
    """Import the rule's script dependencies with every project dependency its env lacks blocked."""
    provided = set(env_packages(rule["conda"]))
    blocked = sorted(IMPORT_NAMES.get(n, n) for n in pyproject_pins() if n not in provided)
    probe = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {blocked!r}:
            raise ImportError('not in env: ' + name)
sys.meta_path.insert(0, Block())
for mod in {script_imports(rule['script'])!r}:
    __import__(mod)
"""
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, (
        f"rule {rule['name']} uses {rule['conda'].name} but its code needs more:\n{proc.stderr[-2000:]}"
    )


def constraint_pins() -> dict[str, str]:
    """constraints.txt as {canonical name: version}; every line must be an exact `name==version`."""
    from packaging.utils import canonicalize_name

    pins: dict[str, str] = {}
    for number, line in enumerate((ROOT / "constraints.txt").read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)==([A-Za-z0-9_.+!-]+)", line.strip())
        assert m, f"constraints.txt line {number}: {line!r} is not an exact name==version pin"
        name = canonicalize_name(m.group(1))
        assert name not in pins, f"constraints.txt line {number}: {name} is pinned twice"
        pins[name] = m.group(2)
    return pins


def test_constraints_pin_every_declared_dependency_within_its_range():
    """`make` installs with constraints.txt: a pyproject.toml range it no longer satisfies would
    make pip fail at install time, so a dependency edited without `make lock` fails here first."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = constraint_pins()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"]) + [
        d for group in project["optional-dependencies"].values() for d in group]
    for spec in declared:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        if name == "ferxai":
            continue
        assert name in pins, f"constraints.txt has no pin for {req.name} (pyproject.toml: {spec}); run make lock"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {req.name}=={pins[name]}, outside pyproject.toml's {spec}; run make lock")


def test_make_installs_with_the_constraints():
    recipe = subprocess.run(["make", "-n", "-B", "test", "VENV=/nonexistent-venv"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout
    install = [line for line in recipe.splitlines() if "pip install" in line and "-e" in line]
    assert install and all("--constraint constraints.txt" in line for line in install), recipe
