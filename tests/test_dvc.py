"""DVC over the Snakemake workflow (dvc.yaml) on the tiny configuration, run by the real dvc, git
and snakemake: repro, metrics and plots, push to a local folder and to an S3 server (moto) and
pull into fresh clones, experiments with a changed parameter. Also the helpers the stages call
(ferxai.stage_files)."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from ferxai.stage_files import assess_targets, explain_targets, main, write_epoch_table
from tinyflow import EXPLAIN_RULES, TINY, add_default_profile, add_library, make_workdir, planned_rules

slow = pytest.mark.slow
BIN = Path(sys.executable).parent
EXP = "tiny_cnn"
STAGES = {"data@tiny", f"train@{EXP}", f"evaluate@{EXP}", f"explain@{EXP}", f"assess@{EXP}", f"record@{EXP}", "runs",
          "report"}
# the tiny config with a scoring stage of one cheap metric
SCORED = {**TINY, "assess": {"metrics": {"sparseness": {}}, "randomisation": {"images": 0}}}
ASSESS_RULES = {"assess_complexity", "assess_scores"}
RECORD_RULES = {"run_record", "runs_table"}
SUMMARY = f"results/{EXP}/eval/test_summary.json"
UP_TO_DATE = "Data and pipelines are up to date."


def environment(**extra: str) -> dict[str, str]:
    # Stage commands call `snakemake` and `python`: the ones of this virtualenv.
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **extra}
    for key in ("PYTHONPATH", "AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        env.pop(key, None)
    return env


def run(cwd: Path, *cmd: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env or environment(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}")
    return proc.stdout + proc.stderr


def dvc(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    return run(cwd, sys.executable, "-m", "dvc", *args, env=env)


def git(cwd: Path, *args: str) -> str:
    return run(cwd, "git", *args)


def make(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    # SETUP= : use this virtualenv as it is instead of installing into VENV.
    return run(cwd, "make", "--no-print-directory", *args, f"VENV={BIN.parent}", "SETUP=", env=env)


def commit(cwd: Path, message: str) -> None:
    git(cwd, "add", "-A")
    git(cwd, "commit", "-q", "-m", message)


def tree(root: Path) -> dict[str, bytes]:
    """Every file DVC tracks in a checkout: results/, the report's items and the report, by relative path."""
    files = {p: p for folder in ("results", "report") for p in (root / folder).rglob("*") if p.is_file()}
    files[root / "report.html"] = root / "report.html"
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


def clone(source: Path, dest: Path) -> Path:
    run(source.parent, "git", "clone", "-q", str(source), str(dest))
    git(dest, "config", "user.email", "test@example.com")
    git(dest, "config", "user.name", "test")
    return dest


def epochs_in_table(root: Path) -> list[int]:
    with open(root / f"results/{EXP}/model/train_log.csv", newline="") as fh:
        return [int(row["epoch"]) for row in csv.DictReader(fh)]


@dataclass
class Built:
    repo: Path
    repro_log: str
    git_status: str  # right after `dvc repro`, before dvc.lock was committed


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Built:
    """A git repository with the workflow, the library, dvc.yaml and the DVC set-up of this
    checkout, on the tiny configuration, after one `dvc repro` from scratch."""
    repo = make_workdir(tmp_path_factory.mktemp("dvc") / "repo", json.loads(json.dumps(SCORED)))
    add_default_profile(repo)
    add_library(repo)
    for name in ("dvc.yaml", ".dvcignore", ".gitignore", "Makefile", ".dvc/config", ".dvc/.gitignore",
                 "tools/dvc-stage"):
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(REPO) / name, repo / name)
    git(repo, "init", "-q")
    git(repo, "config", "user.email", "test@example.com")
    git(repo, "config", "user.name", "test")
    commit(repo, "workflow")
    log = dvc(repo, "repro")
    status = git(repo, "status", "--porcelain")
    commit(repo, "dvc repro")
    return Built(repo, log, status)


@pytest.fixture(scope="module")
def local_remote(built, tmp_path_factory) -> Path:
    """The built repository's cache pushed to a local folder, the default remote (`make remote`)."""
    remote = tmp_path_factory.mktemp("dvc-remote")
    make(built.repo, "remote", f"DVC_REMOTE={remote}")
    commit(built.repo, "local remote")
    make(built.repo, "push")
    return remote


@slow
def test_repro_runs_every_stage_from_the_config(built):
    stages = {line.split()[0] for line in dvc(built.repo, "stage", "list").splitlines() if line.strip()}
    assert stages == STAGES
    for stage in STAGES:
        assert f"Running stage '{stage}'" in built.repro_log
    summary = json.loads((built.repo / SUMMARY).read_text())
    assert 0.0 <= summary["accuracy"] <= 1.0
    assert epochs_in_table(built.repo) == [1, 2]
    assert (built.repo / f"results/{EXP}/explain/store.zarr").is_dir()
    scores = json.loads((built.repo / f"results/{EXP}/scores.json").read_text())
    assert set(scores["clean"]["sparseness"]) == set(TINY["explain"]["methods"])
    assert (built.repo / "report.html").stat().st_size > 10_000
    # the report's own items are the report stage's outs, in the page
    assert (built.repo / "report/data/tiny/samples.png").stat().st_size > 1_000
    assert "report/data/tiny/samples.png" in (built.repo / "report.html").read_text()
    with open(built.repo / "results" / "runs.csv", newline="") as handle:
        runs = list(csv.DictReader(handle))
    assert [r["experiment"] for r in runs] == [EXP] and float(runs[0]["test/accuracy"]) == summary["accuracy"]
    # the commit checked out when the record was written (the test's first one)
    assert re.fullmatch(r"[0-9a-f]{40}", runs[0]["git_commit"]) and runs[0]["git_dirty"] == "False"
    # .gitignore already covers every DVC out; only the lock file is new to git.
    assert built.git_status.splitlines() == ["?? dvc.lock"]


@slow
def test_second_repro_and_snakemake_have_nothing_to_do(built):
    log = dvc(built.repo, "repro")
    assert "Running stage" not in log and UP_TO_DATE in log
    assert UP_TO_DATE in dvc(built.repo, "status")
    assert planned_rules(built.repo) == set()


@slow
def test_metrics_and_plots(built, tmp_path):
    (workspace,) = json.loads(dvc(built.repo, "metrics", "show", "--json")).values()
    shown = workspace["data"][SUMMARY]["data"]
    summary = json.loads((built.repo / SUMMARY).read_text())
    assert shown["accuracy"] == summary["accuracy"] and shown["macro_f1"] == summary["macro_f1"]
    # every method's mean score, per condition and metric, comparable across experiments
    scored = workspace["data"][f"results/{EXP}/scores.json"]["data"]
    assert scored == json.loads((built.repo / f"results/{EXP}/scores.json").read_text())

    plots = json.loads(dvc(built.repo, "plots", "show", "--json"))["data"]
    curve = plots[f"results/{EXP}/model/train_log.csv"][0]
    assert curve["type"] == "vega"
    assert [int(p["epoch"]) for p in curve["content"]["data"]["values"]] == [1, 2]
    confusion = plots[f"results/{EXP}/eval/predictions.csv"][0]
    assert confusion["type"] == "vega" and len(confusion["content"]["data"]["values"]) == summary["num_samples"]
    for png in ("confusion_matrix", "val_macro_f1", "train_loss"):
        assert plots[f"results/{EXP}/eval/plots/{png}.png"][0]["type"] == "image"

    dvc(built.repo, "plots", "show", "-o", str(tmp_path / "plots"))
    assert "vega" in (tmp_path / "plots" / "index.html").read_text()


@slow
def test_push_and_pull_through_a_local_folder(built, local_remote, tmp_path):
    assert any(local_remote.rglob("*"))
    fresh = clone(built.repo, tmp_path / "clone")
    assert not (fresh / "results").exists()
    # `make pull`: dvc pull, then snakemake --touch, as the pulled files have new mtimes and the
    # clone has no .snakemake/ records.
    make(fresh, "pull")
    assert UP_TO_DATE in dvc(fresh, "status")
    assert planned_rules(fresh) == set()
    assert tree(fresh) == tree(built.repo)


@slow
def test_stages_find_the_checkouts_virtualenv_without_it_on_path(built, tmp_path):
    """`dvc repro` run as `.venv/bin/dvc repro`, virtualenv not activated: DVC deletes a stage's
    outs before its command runs, so the command must not depend on PATH to find snakemake."""
    fresh = clone(built.repo, tmp_path / "clone")
    bare = {**environment(), "PATH": "/usr/bin:/bin"}
    bare.pop("VIRTUAL_ENV", None)
    bare.pop("FERXAI_VENV", None)
    assert subprocess.run(["sh", "-c", "command -v snakemake"], env=bare).returncode != 0

    failed = subprocess.run([sys.executable, "-m", "dvc", "repro", "data@tiny"], cwd=fresh, env=bare,
                            capture_output=True, text=True)
    assert failed.returncode != 0
    assert "no virtualenv with snakemake found" in failed.stdout + failed.stderr

    (fresh / ".venv").symlink_to(BIN.parent)  # where `make run` puts it
    dvc(fresh, "repro", "data@tiny", env=bare)
    assert (fresh / "results/data/tiny/splits/test.csv").read_bytes() == \
        (built.repo / "results/data/tiny/splits/test.csv").read_bytes()


@pytest.fixture()
def s3_endpoint():
    """moto's S3 server on a free loopback port, stopped afterwards."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


@slow
def test_push_and_pull_through_s3(built, s3_endpoint, tmp_path):
    import boto3

    aws = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    env = environment(**aws)
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id="testing",
                      aws_secret_access_key="testing", region_name="us-east-1")
    s3.create_bucket(Bucket="ferxai-test")

    dvc(built.repo, "remote", "add", "--force", "s3", "s3://ferxai-test/dvc-cache")
    dvc(built.repo, "remote", "modify", "s3", "endpointurl", s3_endpoint)
    commit(built.repo, "s3 remote")
    dvc(built.repo, "push", "-r", "s3", env=env)
    assert s3.list_objects_v2(Bucket="ferxai-test", Prefix="dvc-cache/")["KeyCount"] > 0

    fresh = clone(built.repo, tmp_path / "clone")
    dvc(fresh, "remote", "default", "--local", "s3")
    make(fresh, "pull", env=env)
    assert UP_TO_DATE in dvc(fresh, "status")
    assert planned_rules(fresh) == set()
    assert tree(fresh) == tree(built.repo)


@slow
def test_experiment_with_a_changed_parameter_retrains(built, local_remote, tmp_path):
    fresh = clone(built.repo, tmp_path / "clone")
    # A plain `dvc pull` (no `make pull`): the stages themselves must keep Snakemake from
    # rebuilding what DVC restored, whatever the restored files' mtimes.
    dvc(fresh, "pull")
    before = json.loads((fresh / SUMMARY).read_text())
    data_before = {k: v for k, v in tree(fresh).items() if k.startswith("results/data/")}

    log = dvc(fresh, "exp", "run", "-S", "config/config.yaml:train.epochs=3", f"evaluate@{EXP}")
    assert f"Running stage 'train@{EXP}'" in log and f"Running stage 'evaluate@{EXP}'" in log
    assert "Running stage 'data@tiny'" not in log
    assert not (fresh / "benchmarks" / "data").exists()  # Snakemake ran no data job either
    assert {k: v for k, v in tree(fresh).items() if k.startswith("results/data/")} == data_before

    assert epochs_in_table(fresh) == [1, 2, 3]
    after = json.loads((fresh / SUMMARY).read_text())
    assert after["config_hash"] != before["config_hash"]
    exps = json.loads(dvc(fresh, "exp", "show", "--json"))
    epochs = [run_["data"]["params"]["config/config.yaml"]["data"]["train"]["epochs"]
              for rev in exps for group in (rev.get("experiments") or []) for run_ in group["revs"]]
    assert 3 in epochs
    # Only the explanations and their scores (not run by this experiment) are left for Snakemake.
    assert planned_rules(fresh) <= EXPLAIN_RULES | ASSESS_RULES | RECORD_RULES


@slow
def test_stage_targets_cover_the_workflow_target(built):
    """Every file of Snakemake's `all` target is a target of some DVC stage, so after `dvc repro`
    Snakemake has nothing left to build (the explain stage takes its targets from stage_files)."""
    out = run(built.repo, sys.executable, "-m", "snakemake", "-n", "--forcerun", "all", "--cores", "1")
    wanted = set(re.search(r"^rule all:\n    input: (.*)$", out, flags=re.M).group(1).split(", "))
    staged = set(explain_targets(SCORED, EXP)) | set(assess_targets(SCORED, EXP))
    for stage in yaml.safe_load((built.repo / "dvc.lock").read_text())["stages"].values():
        for cmd in stage["cmd"] if isinstance(stage["cmd"], list) else [stage["cmd"]]:
            words = cmd.split()
            if "snakemake" in words and "--touch" not in words:
                staged.update(w for w in words if w.startswith("results/"))
    assert wanted <= staged


def test_explain_targets_follow_methods_and_conditions():
    cfg = json.loads(json.dumps(TINY))
    root = f"results/{EXP}/explain"
    assert explain_targets(cfg, EXP) == [f"{root}/store.zarr", f"{root}/clean/grids",
                                         f"{root}/clean/saliency/gallery.png",
                                         f"{root}/clean/gradcam/gallery.png"]
    cfg["explain"]["conditions"] = ["clean", "gaussian-0.1"]
    cfg["explain"]["methods"] = {"ig_blur": {"method": "integrated_gradients", "baseline": "blur"}}
    assert explain_targets(cfg, EXP)[1:] == [f"{root}/clean/grids", f"{root}/clean/ig_blur/gallery.png",
                                             f"{root}/gaussian-0.1/grids",
                                             f"{root}/gaussian-0.1/ig_blur/gallery.png"]
    with pytest.raises(KeyError):
        explain_targets(cfg, "nope")


def test_explain_targets_cli_refuses_to_print_nothing(tmp_path, capsys):
    # An empty list would turn the stage's `snakemake $t` into the whole default target.
    cfg = json.loads(json.dumps(TINY))
    cfg["explain"]["methods"] = {}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["explain-targets", EXP, "--config", str(tmp_path / "config.yaml")]) == 1
    assert main(["explain-targets", "nope", "--config", str(tmp_path / "config.yaml")]) == 1
    assert capsys.readouterr().out == ""


def test_assess_targets_follow_the_configuration_and_refuse_to_print_nothing(tmp_path, capsys):
    root = f"results/{EXP}/assess"
    assert assess_targets(TINY, EXP) == []  # no assess section: no scoring
    assert assess_targets(SCORED, EXP) == [f"{root}/scores.csv", f"results/{EXP}/scores.json",
                                           f"{root}/metric_reliability.csv", f"{root}/leaderboard.png",
                                           f"{root}/faithfulness_vs_cost.png"]
    noisy = {**SCORED, "explain": {**TINY["explain"], "conditions": ["clean", "gaussian-0.1"]},
             "assess": {"metrics": {}, "randomisation": {"images": 2}}}
    assert assess_targets(noisy, EXP)[-2:] == [f"{root}/sanity_checks.png", f"{root}/robustness.png"]
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    (tmp_path / "scored.yaml").write_text(yaml.safe_dump(SCORED))
    assert main(["assess-targets", EXP, "--config", str(tmp_path / "tiny.yaml")]) == 1
    assert capsys.readouterr().out == ""
    assert main(["assess-targets", EXP, "--config", str(tmp_path / "scored.yaml")]) == 0
    assert capsys.readouterr().out.split() == assess_targets(SCORED, EXP)


def test_epoch_table_has_one_row_per_logged_epoch(tmp_path):
    records = [{"epoch": e, "train_loss": 1.0 / e, "val_macro_f1": 0.1 * e} for e in (1, 2, 3)]
    log = tmp_path / "train_log.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in records) + "\n")
    out = write_epoch_table(log, tmp_path / "sub" / "train_log.csv")
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [row["epoch"] for row in rows] == ["1", "2", "3"]
    assert list(rows[0]) == ["epoch", "train_loss", "val_macro_f1"]
    assert float(rows[2]["val_macro_f1"]) == pytest.approx(0.3)
    log.write_text("")
    with pytest.raises(ValueError, match="no epochs"):
        write_epoch_table(log, tmp_path / "empty.csv")
