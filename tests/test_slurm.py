"""The tiny workflow on a real SLURM cluster, through profiles/slurm and snakemake-executor-plugin-slurm.

A module fixture starts a single-node cluster with accounting and fake GPUs
(tools/slurm/start-slurm.sh) unless `sinfo` already answers, and stops it at the end if it started
it. The pipeline then runs through a copy of profiles/slurm whose site lines (partition, account,
sizes) are edited for this node, as a user would, and the test checks in `sacct` that every job
completed and that the GPU rules asked SLURM for a GPU, and that the results equal a local run's.
Skipped only where a cluster cannot be started here (not root, no apt/dpkg, start script failed).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from tinyflow import SNAKEMAKE, TINY, make_workdir

pytestmark = pytest.mark.slow

TOOLS = Path(REPO) / "tools" / "slurm"
PROFILE = Path(REPO) / "profiles" / "slurm" / "config.yaml"
SLURM_DIR = Path(os.environ.get("FERXAI_SLURM_DIR", "/tmp/slurm-local"))
USERS_LOCK = Path("/tmp/ferxai-slurm-users.lock")  # shared by every session using the cluster
GPU_RULES = {"train", "evaluate", "preflight", "attribute"}
RULES = GPU_RULES | {"synthesize_dataset", "manifest", "splits", "plot_confusion_matrix",
                     "plot_training_curves", "select_samples", "explain_inputs", "gather_attributions",
                     "method_grids", "explanation_store",
                     "run_record", "runs_table"}  # the run records (records.smk)
RUN_TIMEOUT = 1200  # seconds for one snakemake run (a normal one takes a few minutes)


def tiny_gpu_config() -> dict:
    """TINY with `device: auto` everywhere and a GPU requested by every rule that can use one."""
    cfg = json.loads(json.dumps(TINY))
    for section in ("train", "evaluate", "explain"):
        cfg[section]["device"] = "auto"
        cfg["resources"][section].update(gpu=1, threads=1)
    # One batch-size candidate: the preflight's choice is timing-dependent, and the comparison
    # with the local run needs the same batch size (its seconds per image still differ).
    cfg["explain"]["preflight"]["batch_sizes"] = [8]
    # One cheap method, in two shards (two attribute jobs): every explain rule runs, and the
    # 2-CPU node runs both shards at once.
    cfg["explain"]["methods"] = {"saliency": {}}
    cfg["explain"]["shards"] = 2
    return cfg


# ---------------------------------------------------------------------------------------- cluster

def _cmd(args: list[str], timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)


def _sinfo_answers() -> bool:
    if shutil.which("sinfo") is None:
        return False
    try:
        proc = _cmd(["sinfo", "-h", "-o", "%T"], timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    states = {s.rstrip("*~#$@+") for s in proc.stdout.split()}
    return proc.returncode == 0 and bool(states & {"idle", "mixed", "allocated", "completing"})


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _timeout_output(err: subprocess.TimeoutExpired) -> str:
    parts = (err.stdout, err.stderr)
    return "".join(p.decode(errors="replace") if isinstance(p, bytes) else (p or "") for p in parts)


@dataclass
class Cluster:
    partition: str
    account: str | None
    gpus: int
    started_here: bool


def _start_cluster() -> None:
    """Start the project's single-node cluster, or skip the module saying why it cannot."""
    if os.geteuid() != 0:
        pytest.skip("SLURM is not running and cannot be started: tools/slurm/start-slurm.sh needs root")
    missing = [tool for tool in ("apt-get", "dpkg", "bash") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"SLURM is not running and cannot be started: no {', '.join(missing)} (Debian/Ubuntu only)")
    env = {**os.environ, "ACCOUNTING": "dbd", "FAKE_GPUS": "2"}
    try:
        proc = _cmd(["bash", str(TOOLS / "start-slurm.sh"), str(SLURM_DIR)], timeout=900, env=env)
        reason = "" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
        output = proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as err:
        reason, output = "timed out after 900 s", _timeout_output(err)
    if not reason and not _sinfo_answers():
        reason = "ran but sinfo shows no usable node"
    if reason:
        # stop whatever daemons it did start (by its PID files, so nothing that was running before)
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            _cmd(["bash", str(TOOLS / "stop-slurm.sh"), str(SLURM_DIR)], timeout=120)
        pytest.skip(f"SLURM cannot be started here: tools/slurm/start-slurm.sh {reason}:\n{_tail(output)}")


def _describe_cluster(started_here: bool) -> Cluster:
    """What the profile copy needs; fails (does not skip) when a running cluster cannot serve the test."""
    acct = _cmd(["sacct", "-n", "-X", "-S", "now-1minutes"], timeout=30)
    if acct.returncode != 0:
        pytest.fail("a SLURM cluster answers sinfo but sacct fails (no accounting: the plugin's status "
                    f"checks need it): {acct.stderr.strip()}. Start tools/slurm/start-slurm.sh with ACCOUNTING=dbd.")
    gres = _cmd(["sinfo", "-h", "-o", "%G"], timeout=30).stdout
    gpus = sum(int(n) for n in re.findall(r"gpu(?::[\w.-]+)?:(\d+)", gres))
    if not gpus:
        pytest.fail(f"the running SLURM cluster has no GPU GRES ({gres.strip() or 'none'}); the test needs one "
                    "to check GPU requests. Start tools/slurm/start-slurm.sh with FAKE_GPUS=1 or more.")
    partitions = _cmd(["sinfo", "-h", "-o", "%P"], timeout=30).stdout.split()
    default = [p[:-1] for p in partitions if p.endswith("*")]
    partition = (default or partitions)[0].rstrip("*")
    user = _cmd(["id", "-un"]).stdout.strip()
    out = _cmd(["sacctmgr", "-n", "-P", "show", "user", user, "format=defaultaccount"], timeout=30).stdout
    account = out.strip().splitlines()[0].strip() if out.strip() else None
    return Cluster(partition=partition, account=account, gpus=gpus, started_here=started_here)


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0 and not _sinfo_answers():
        pytest.skip("SLURM is not running and cannot be started: tools/slurm/start-slurm.sh needs root")
    started_here = False
    # Held shared for the module's duration ("in use"): a session that started the cluster stops
    # it at the end only if no other session holds this lock.
    users = open(USERS_LOCK, "a+")
    with contextlib.suppress(OSError):
        os.chmod(USERS_LOCK, 0o666)
    fcntl.flock(users, fcntl.LOCK_SH)
    try:
        if not _sinfo_answers():
            _start_cluster()
            started_here = True
        yield _describe_cluster(started_here)
    finally:
        fcntl.flock(users, fcntl.LOCK_UN)
        if started_here:
            _stop_if_unused(users)
        users.close()


def _stop_if_unused(users) -> None:
    """Stop the cluster this session started, unless another session or job is still using it."""
    try:
        fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        warnings.warn(f"left the SLURM cluster in {SLURM_DIR} running: another test session is using it")
        return
    try:
        queue = _cmd(["squeue", "-h", "-o", "%i"], timeout=30).stdout.split()
        if queue:
            warnings.warn(f"left the SLURM cluster in {SLURM_DIR} running: jobs {queue} are queued")
            return
        _cmd(["bash", str(TOOLS / "stop-slurm.sh"), str(SLURM_DIR)], timeout=120)
    finally:
        fcntl.flock(users, fcntl.LOCK_UN)


# ------------------------------------------------------------------------------------------- runs

def cluster_profile(cluster: Cluster, prefix: str) -> dict:
    """profiles/slurm with its site lines edited for this node, as a user edits them for theirs.

    Partition and account are this cluster's; CPUs, memory and threads shrink to fit a 2-core
    node; status polling is made fast. Everything else (executor, the rules given a GPU, the
    absence of a runtime for attribute) is the repository profile's.
    """
    prof = yaml.safe_load(PROFILE.read_text())
    site = {"slurm_partition": cluster.partition, "mem_mb": 1000}
    if cluster.account:
        site["slurm_account"] = cluster.account
    prof["default-resources"].update(site)
    for resources in prof["set-resources"].values():
        resources.update(site, cpus_per_task=1)
        resources.pop("gpu_model", None)  # the fake GPUs have no type
    prof["set-threads"] = {rule: 1 for rule in prof["set-threads"]}
    prof.update({
        "jobs": 4, "latency-wait": 5, "retries": 0,
        "slurm-init-seconds-before-status-checks": 5, "seconds-between-status-checks": 5,
        "slurm-jobname-prefix": prefix, "slurm-keep-successful-logs": True,
    })
    return prof


def _cancel_prefix(prefix: str) -> None:
    """scancel whatever this test submitted and left behind (job names start with the prefix)."""
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        out = _cmd(["squeue", "-h", "-o", "%i %j"], timeout=30).stdout
        ids = [line.split()[0] for line in out.splitlines() if line.split()[1:2]
               and line.split()[1].startswith(prefix)]
        if ids:
            _cmd(["scancel", *ids], timeout=30)


@dataclass
class SlurmRun:
    workdir: Path
    output: str
    run_id: str
    submitted: dict[str, tuple[str, str]]          # SLURM job id -> (rule, snakemake job id)
    resources: dict[str, dict[str, str]] = field(default_factory=dict)  # snakemake job id -> resources
    sacct: dict[str, dict[str, str]] = field(default_factory=dict)     # SLURM job id -> sacct fields


SACCT_FIELDS = ["JobIDRaw", "JobName", "State", "ExitCode", "Partition", "Account", "Timelimit",
                "ReqTRES", "AllocTRES"]


def _job_resources(output: str) -> dict[str, dict[str, str]]:
    """snakemake job id -> its `resources:` line, parsed, from snakemake's job announcements."""
    found = {}
    for block in re.split(r"\n(?=(?:local)?(?:rule|checkpoint) \w+:\n)", output):
        jobid = re.search(r"^\s+jobid: (\d+)$", block, flags=re.M)
        res = re.search(r"^\s+resources: (.*)$", block, flags=re.M)
        if jobid and res:
            found[jobid.group(1)] = dict(kv.split("=", 1) for kv in res.group(1).split(", ") if "=" in kv)
    return found


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory):
    """The same config run locally and on SLURM (at the same time: they share nothing)."""
    cfg = tiny_gpu_config()
    local = make_workdir(tmp_path_factory.mktemp("local"), cfg)
    # niced: it only fills the CPU while the SLURM run waits for its status checks
    local_proc = subprocess.Popen([*SNAKEMAKE, "--cores", "1"], cwd=local, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, preexec_fn=lambda: os.nice(19))

    workdir = make_workdir(tmp_path_factory.mktemp("slurm"), cfg)
    # profiles/default applies next to --profile, as in a checkout (keep-going, rerun-incomplete)
    shutil.copytree(Path(REPO) / "profiles" / "default", workdir / "profiles" / "default")
    prefix = f"ferxaitest_{uuid.uuid4().hex[:8]}"
    (workdir / "profiles" / "slurm-test").mkdir(parents=True)
    (workdir / "profiles" / "slurm-test" / "config.yaml").write_text(
        yaml.safe_dump(cluster_profile(cluster, prefix), sort_keys=False))
    started = time.time()
    try:
        proc = _cmd([*SNAKEMAKE, "--profile", "profiles/slurm-test"], timeout=RUN_TIMEOUT, cwd=workdir)
        output = proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as err:
        _cancel_prefix(prefix)
        local_proc.kill()
        pytest.fail(f"snakemake on SLURM ran over {RUN_TIMEOUT} s:\n{_tail(_timeout_output(err), 40)}")
    finally:
        _cancel_prefix(prefix)
    local_out, _ = local_proc.communicate(timeout=RUN_TIMEOUT)
    assert proc.returncode == 0, f"snakemake on SLURM failed:\n{_tail(output, 80)}"
    assert local_proc.returncode == 0, f"local snakemake failed:\n{_tail(local_out, 80)}"
    print(f"SLURM run: {time.time() - started:.0f} s")

    run_id = re.search(r"SLURM run ID: (\S+)", output).group(1)
    submitted = {}
    for sm_id, slurm_id, log in re.findall(
            r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (\S+)\)", output):
        rule = re.search(r"/(?:rule|group)_(\w+)/", log).group(1)
        submitted[slurm_id] = (rule, sm_id)
    sacct = _cmd(["sacct", "-X", "-P", "-n", "--name", run_id, "-S",
                  time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started - 120)), "-E", "now",
                  "-o", ",".join(SACCT_FIELDS)], timeout=60)
    assert sacct.returncode == 0, sacct.stderr
    rows = {}
    for line in sacct.stdout.splitlines():
        row = dict(zip(SACCT_FIELDS, line.split("|")))
        rows[row["JobIDRaw"]] = row
    return local, SlurmRun(workdir, output, run_id, submitted, _job_resources(output), rows)


def _minutes(limit: str) -> int:
    """sacct Timelimit ([D-]HH:MM:SS) in minutes."""
    days, _, clock = limit.rpartition("-")
    h, m, s = (int(x) for x in clock.split(":"))
    return int(days or 0) * 1440 + h * 60 + m + (s > 0)


# ------------------------------------------------------------------------------------------ tests

def test_profile_uses_existing_plugin_options_and_leaves_attribute_runtime_to_the_rule():
    """Static checks of profiles/slurm (no cluster needed)."""
    from snakemake_executor_plugin_slurm import ExecutorSettings

    text = PROFILE.read_text()
    prof = yaml.safe_load(text)
    assert prof["executor"] == "slurm"
    options = {f.replace("_", "-") for f in ExecutorSettings.__dataclass_fields__}
    # every slurm-* option, set or commented out, exists in the installed plugin
    named = set(re.findall(r"^#?\s*slurm-([\w-]+):", text, flags=re.M))
    assert named and named <= options, named - options
    gpu_rules = {rule for rule, res in prof["set-resources"].items() if res.get("gpu", 0) >= 1}
    assert gpu_rules == GPU_RULES
    assert "runtime" not in prof["set-resources"]["attribute"]  # it comes from the preflight
    for rule in GPU_RULES:
        assert prof["set-resources"][rule]["cpus_per_task"] == prof["set-threads"][rule]
    assert "gpu" not in prof["default-resources"] and "cpus_per_task" not in prof["default-resources"]


def test_every_submitted_job_completed_in_sacct(runs):
    _, run = runs
    assert set(run.submitted) == set(run.sacct), (
        f"submitted {sorted(run.submitted)} but sacct --name {run.run_id} lists {sorted(run.sacct)}")
    not_done = {j: (run.submitted[j][0], r["State"], r["ExitCode"]) for j, r in run.sacct.items()
                if r["State"] != "COMPLETED" or r["ExitCode"] != "0:0"}
    assert not not_done, not_done
    rules = [rule for rule, _ in run.submitted.values()]
    # one job per shard; shard 0 of the first condition runs in the preflight job
    assert set(rules) == RULES and rules.count("attribute") == 1
    rules = set(rules)
    finished = set(re.findall(r"Finished jobid: \d+ \(Rule: (\w+)\)", run.output)) - {"all"}
    assert rules == finished


def test_gpu_rules_requested_a_gpu_and_the_others_did_not(runs):
    _, run = runs
    for slurm_id, (rule, _) in run.submitted.items():
        row = run.sacct[slurm_id]
        if rule in GPU_RULES:
            assert "gres/gpu=1" in row["ReqTRES"] and "gres/gpu=1" in row["AllocTRES"], (rule, row)
        else:
            assert "gres/gpu" not in row["AllocTRES"], (rule, row)


def test_time_limits_come_from_profile_and_attribute_runtime_from_preflight(runs):
    _, run = runs
    prof = yaml.safe_load(PROFILE.read_text())
    by_rule: dict[str, set[int]] = {}
    for slurm_id, (rule, sm_id) in run.submitted.items():
        limit = _minutes(run.sacct[slurm_id]["Timelimit"])
        assert limit == int(run.resources[sm_id]["runtime"]), (rule, limit, run.resources[sm_id])
        by_rule.setdefault(rule, set()).add(limit)
    for rule in GPU_RULES - {"attribute"}:
        assert by_rule[rule] == {prof["set-resources"][rule]["runtime"]}
    # attribute: the rule's own runtime (from the measured seconds per image), not a profile value
    configured = {prof["default-resources"]["runtime"]} | {
        r["runtime"] for r in prof["set-resources"].values() if "runtime" in r}
    assert by_rule["attribute"] and not by_rule["attribute"] & configured, by_rule["attribute"]


def test_jobs_ran_on_the_cpu_despite_the_gpu_allocation(runs):
    _, run = runs
    log = (run.workdir / "logs" / "tiny_cnn" / "train.log").read_text()
    assert "training on cpu" in log
    for pre in (run.workdir / "results" / "tiny_cnn" / "explain" / "preflight").glob("*.json"):
        assert json.loads(pre.read_text())["device"] == "cpu"


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_results_equal_a_local_run(runs):
    """Byte-identical results except what records wall time: the preflight's timings and the
    training log's seconds per epoch (their other fields must still agree)."""
    local, run = runs
    ours, theirs = _digests(run.workdir / "results"), _digests(local / "results")
    assert sorted(ours) == sorted(theirs)
    timed = {k for k in ours if "/preflight/" in k or k.endswith("train_log.jsonl")}
    assert any(k.endswith("test_summary.json") for k in ours) and len(timed) == 2
    differing = sorted(k for k in ours if k not in timed and ours[k] != theirs[k])
    assert not differing, differing
    for key in timed:
        a = (run.workdir / "results" / key).read_text()
        b = (local / "results" / key).read_text()
        if key.endswith(".jsonl"):
            rows_a = [{k: v for k, v in json.loads(x).items() if k != "seconds"} for x in a.splitlines()]
            rows_b = [{k: v for k, v in json.loads(x).items() if k != "seconds"} for x in b.splitlines()]
            assert rows_a == rows_b, key
        else:
            keep = ("method", "device", "batch_size", "images_per_call", "spec")
            assert {k: json.loads(a)[k] for k in keep} == {k: json.loads(b)[k] for k in keep}, key


@pytest.mark.parametrize("gpus", [1, 2])
def test_library_falls_back_to_cpu_inside_a_gpu_allocation(cluster, gpus):
    """On the fake-GPU node SLURM sets CUDA_VISIBLE_DEVICES but torch has no CUDA device:
    `device: auto` must pick the CPU and the GPU slot lock must not fail."""
    if gpus > cluster.gpus:
        pytest.skip(f"the running cluster has {cluster.gpus} GPU(s)")
    probe = ("import os, json, torch\n"
             "from ferxai.device import resolve_device\n"
             "from ferxai.explain.devices import gpu_slot\n"
             "seen = os.environ.get('CUDA_VISIBLE_DEVICES')\n"
             "with gpu_slot(timeout=30) as dev:\n"
             "    inside = os.environ.get('CUDA_VISIBLE_DEVICES')\n"
             "    device = str(resolve_device('auto'))\n"
             "print(json.dumps(dict(seen=seen, slot=dev, inside=inside, device=device,\n"
             "                      cuda=torch.cuda.is_available())))\n")
    args = ["srun", "-p", cluster.partition, f"--gpus={gpus}", "-n1", "-c1", "--mem=1000", "-t", "5",
            "-J", "ferxaitest_probe", sys.executable, "-c", probe]
    if cluster.account:
        args[1:1] = ["-A", cluster.account]
    proc = _cmd(args, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["seen"] and len(got["seen"].split(",")) == gpus, got  # SLURM did assign GPU(s)
    assert got["cuda"] is False and got["device"] == "cpu", got
    assert got["slot"] in got["seen"].split(",") and got["inside"] == got["slot"], got
