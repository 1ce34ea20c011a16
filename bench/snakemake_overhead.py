"""Snakemake's own overhead: DAG build + dry run for about 100, 1,000 and 10,000 jobs, no-op dry runs.

    python bench/snakemake_overhead.py --sizes 100 1000 10000 --repeats 5 --cold-repeats 3 \
        --out bench/results/snakemake_overhead.json

What is measured, in temporary copies of the workflow (Snakefile, workflow/, config/, envs/, profiles/;
the library is imported from this checkout, as in tests/tinyflow.py), always the user's command
`snakemake -n` with its output captured:

* fresh: nothing exists yet; the first dry run a user sees. The shard count is a setting
  (explain.shards), so this DAG already holds every job.
* expanded: everything up to and including the selection of images exists, and the dry run plans
  every explanation job: explain_inputs, preflight per method (which also
  explains shard 0 of the first condition), attribute per other shard, gather (with overlays) per
  condition x method, grids per condition, the store. This is the "N-job DAG" of the table. Job
  count per experiment: 2 + C + C x M x (S + 1), plus `all`.
* noop: every output exists and is up to date; `snakemake -n` must answer "Nothing to be done".
* expanded_batch / noop_batch: the same with `--batch all=i/K` (--batches, warm cache only),
  Snakemake's way to build the DAG of a K-th of the targets per invocation: batch 1 before the
  run (later batches need the earlier ones done), every batch in the no-op state.

How the files come to exist: the real jobs would take minutes each (training, attributions) and a
dry run never reads what they write, so the workflow is run by Snakemake itself with every `script:`
replaced by a stub that only writes its outputs: empty files, empty folders for directory()
outputs, `samples.csv` with S x IMAGES_PER_SHARD rows and preflight JSONs with a `sec_per_image` and
`shard_images` (the attribute rule's runtime resource reads them). Everything
else is Snakemake's real local execution, so the file states are those after a real run: mtimes in order and a metadata record per output in
.snakemake/metadata (params, code, input, software env), which a no-op check reads. (`snakemake
--touch` would not do: it writes no metadata records.) For "expanded" the stub runs only the
jobs up to the selection (its targets: splits summary, samples.csv, evaluation outputs); for
"noop" it then runs the rest.

Sizes: a target N picks E experiments, C noise conditions and M methods growing with N and solves
for S shards per (experiment, condition, method); the planned count is read back from the dry
run's job-stats table. "Cold" runs get an empty XDG_CACHE_HOME and "warm" runs share one filled
beforehand; config validation reads the import-free method and architecture catalogs
(ferxai.explain.catalog, ferxai.models.catalog) and caches nothing, so the two differ only by what
Snakemake and Python cache themselves. The default config's no-op is measured on a copy of this checkout's
results/ and .snakemake/ (cp -a keeps mtimes); if the copy is not up to date (a script or the
config was edited after the last real run), it is brought up to date with `--touch` first and the
reason is recorded.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
COPY = ("Snakefile", "workflow", "config", "envs", "profiles")
SNAKEMAKE_BIN = Path(sys.executable).with_name("snakemake")
SNAKEMAKE = [str(SNAKEMAKE_BIN)] if SNAKEMAKE_BIN.exists() else [sys.executable, "-m", "snakemake"]
STUB_FLAG = "--as-stub-snakemake"
# Names of the workflow's directory() outputs (scripts get plain paths; a new one fails the stub run loudly).
DIRECTORY_OUTPUTS = {"synthetic", "overlays", "grids"}
NOISE = ("gaussian", "saltpepper", "speckle")
IMAGES_PER_SHARD = 4
SAMPLES_HEADER = "id,label,prediction,confidence,set"
EVAL_PLOTS = ("confusion_matrix", "confusion_matrix_normalized", "train_loss", "val_loss", "val_accuracy",
              "val_macro_f1")


def factors(n: int, methods_available: int) -> dict[str, int]:
    """Experiments, conditions, methods growing with n; shards per (experiment, condition, method) fill it."""
    decades = max(0.0, math.log10(n) - 2)
    experiments = max(1, round(2 ** decades))
    conditions = max(1, round(2 + decades))
    methods = max(1, round(6 * 1.8 ** decades))
    per_experiment = (n - 1) / experiments - 2 - methods - conditions
    shards = max(1, round(per_experiment / (conditions * methods) - 2))
    return {"experiments": experiments, "conditions": conditions, "methods": methods, "shards": shards,
            "expected_jobs": experiments * (2 + methods + conditions + conditions * methods * (shards + 2)) + 1,
            "aliased_methods": max(0, methods - methods_available)}


def condition_names(c: int) -> list[str]:
    names = ["clean"]
    level = 1
    while len(names) < c:
        names += [f"{kind}-0.{level}" for kind in NOISE]
        level += 1
    return names[:c]


def make_config(base: dict, f: dict) -> dict:
    cfg = json.loads(json.dumps(base))
    dataset = sorted(cfg["datasets"])[0]
    model = "fer_cnn" if "fer_cnn" in cfg["models"] else sorted(cfg["models"])[0]
    cfg["experiments"] = {f"exp{i:03d}": {"dataset": dataset, "model": model} for i in range(f["experiments"])}
    cfg["datasets"] = {dataset: cfg["datasets"][dataset]}
    base_methods = list(cfg["explain"]["methods"].items())
    methods = {}
    for i in range(f["methods"]):
        label, params = base_methods[i % len(base_methods)]
        if i < len(base_methods):
            methods[label] = params
        else:  # more methods than exist: the same method under another label
            methods[f"{label}_{i // len(base_methods)}"] = {"method": params.get("method", label), **params}
    cfg["explain"]["methods"] = methods
    cfg["explain"]["conditions"] = condition_names(f["conditions"])
    cfg["explain"]["shards"] = f["shards"]
    return cfg


def make_workdir(path: Path, cfg: dict | None) -> Path:
    path.mkdir(parents=True)
    for name in COPY:
        src = REPO / name
        if src.exists():
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, path / name)
    if cfg is not None:
        (path / "config" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def run(cmd: list[str], cwd: Path, cache: Path, check: bool = True) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + system of the process) and output of one command."""
    env = dict(os.environ, XDG_CACHE_HOME=str(cache))
    with tempfile.TemporaryFile("w+") as fh:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        fh.seek(0)
        out = fh.read()
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed in {cwd}:\n{out[-4000:]}")
    return seconds, usage.ru_utime + usage.ru_stime, out


def planned_jobs(out: str) -> int:
    if "Nothing to be done" in out:
        return 0
    m = re.search(r"^total\s+(\d+)\s*$", out, flags=re.M)
    if not m:
        raise RuntimeError(f"no job stats in dry-run output:\n{out[-2000:]}")
    return int(m.group(1))


def stub_snakemake() -> None:
    """`snakemake` whose `script:` jobs only write placeholder outputs (setup of file states, never timed).

    Everything else is Snakemake's real local execution: the DAG,
    output checks, mtimes and the metadata records in .snakemake/metadata that no-op checks read.
    """
    import snakemake.script
    from snakemake.cli import main as snakemake_main

    samples = int(os.environ["FERXAI_BENCH_SAMPLES"])

    def evaluate(self, edit=False):
        if self.bench_record is not None:  # set by the shell call a real script makes
            self.bench_record.running_time = 0.0
        for f in self.output:
            path = Path(f)
            if path.name in DIRECTORY_OUTPUTS or path.suffix == ".zarr":
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.name == "samples.csv":
                rows = [f"s{k:05d},0,0,0.9,high_confidence" for k in range(samples)]
                path.write_text("\n".join([SAMPLES_HEADER, *rows]) + "\n")
            elif path.parent.name == "preflight":  # read by the attribute rule's runtime resource
                path.write_text(json.dumps({"sec_per_image": 0.01, "batch_size": 16,
                                            "shard_images": IMAGES_PER_SHARD}))
            else:
                path.touch()

    snakemake.script.PythonScript.evaluate = evaluate
    sys.argv = ["snakemake", *sys.argv[2:]]
    sys.exit(snakemake_main())


def stub_run(workdir: Path, cache: Path, samples: int, targets: list[str]) -> int:
    """Run the workflow (targets, or all) with stub scripts; returns the number of jobs it ran."""
    env = dict(os.environ, XDG_CACHE_HOME=str(cache), FERXAI_BENCH_SAMPLES=str(samples))
    cmd = [sys.executable, str(Path(__file__).resolve()), STUB_FLAG, "--cores", "2", "--scheduler", "greedy",
           *targets]
    proc = subprocess.run(cmd, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"stub run failed in {workdir}:\n{proc.stdout[-4000:]}")
    m = re.findall(r"(\d+) of (\d+) steps", proc.stdout)
    return int(m[-1][1]) if m else 0


def time_dry_runs(workdir: Path, warm_cache: Path, scratch: Path, repeats: int, cold_repeats: int,
                  expect: str, extra: tuple[str, ...] = ()) -> dict:
    """`snakemake -n` repeated, cold (empty XDG_CACHE_HOME) and warm: wall and CPU seconds, median and min.

    CPU seconds (user + system of the Snakemake process) hardly depend on what else runs on the
    machine; wall seconds do, so the 1-minute load average is recorded before each run.
    """
    result: dict = {"load_avg": []}
    jobs = None
    for kind, count in (("cold", cold_repeats), ("warm", repeats)):
        walls, cpus = [], []
        for _ in range(count):
            cache = warm_cache
            if kind == "cold":
                cache = scratch / f"cold-cache-{time.monotonic_ns()}"
                cache.mkdir()
            result["load_avg"].append(round(os.getloadavg()[0], 2))
            seconds, cpu, out = run([*SNAKEMAKE, "-n", *extra], workdir, cache)
            n = planned_jobs(out)
            if expect == "noop" and n != 0:
                raise RuntimeError(f"not a no-op in {workdir}:\n{out[-3000:]}")
            if jobs is not None and n != jobs:
                raise RuntimeError(f"planned {n} jobs, earlier {jobs}")
            jobs = n
            if kind == "cold":
                shutil.rmtree(cache)
            walls.append(round(seconds, 3))
            cpus.append(round(cpu, 3))
        if walls:
            result[kind] = {"median_s": round(statistics.median(walls), 3), "min_s": min(walls),
                            "cpu_median_s": round(statistics.median(cpus), 3), "wall_s": walls, "cpu_s": cpus}
    result["planned_jobs"] = jobs
    return result


def summary(m: dict) -> str:
    """One line for the console."""
    return "  ".join(f"{k}: median {m[k]['median_s']} s (CPU {m[k]['cpu_median_s']} s)" for k in ("cold", "warm")
                     if k in m) + f"  jobs {m['planned_jobs']}  load {m['load_avg']}"


def time_batches(workdir: Path, warm_cache: Path, scratch: Path, args, expect: str) -> dict:
    """`snakemake -n --batch all=i/K` (warm cache): each builds the DAG of a K-th of the targets.

    Snakemake refuses batch i before batches 1..i-1 are complete, so before the run ("expanded")
    only batch 1 can be timed; in the no-op state every batch is.
    """
    k = args.batches
    indices = range(1, k + 1) if expect == "noop" else [1]
    per = {f"{i}/{k}": time_dry_runs(workdir, warm_cache, scratch, args.repeats, 0, expect, ("--batch", f"all={i}/{k}"))
           for i in indices}
    medians = [m["warm"]["median_s"] for m in per.values() if "warm" in m]
    cpus = [m["warm"]["cpu_median_s"] for m in per.values() if "warm" in m]
    return {"batches": per, "max_median_s": max(medians), "sum_median_s": round(sum(medians), 3),
            "max_cpu_median_s": max(cpus), "planned_jobs": [m["planned_jobs"] for m in per.values()],
            "summary": f"slowest batch {max(medians)} s (CPU {max(cpus)} s), all batches {round(sum(medians), 1)} s, "
                       f"jobs {[m['planned_jobs'] for m in per.values()]}"}


def bench_size(n: int, base: dict, scratch: Path, warm_cache: Path, args) -> dict:
    f = factors(n, len(base["explain"]["methods"]))
    cfg = make_config(base, f)
    workdir = make_workdir(scratch / f"jobs-{n}", cfg)
    experiments = sorted(cfg["experiments"])
    entry = {"target_jobs": n, **f, "images_per_shard": IMAGES_PER_SHARD, "samples_per_experiment": f["shards"] * IMAGES_PER_SHARD,
             "conditions_list": cfg["explain"]["conditions"], "methods_list": list(cfg["explain"]["methods"])}
    print(f"[{n}] {f}", flush=True)

    entry["fresh"] = time_dry_runs(workdir, warm_cache, scratch, args.repeats, args.cold_repeats, "fresh")
    print(f"[{n}] fresh: {summary(entry['fresh'])}", flush=True)

    # Everything up to the selection, run by the stub (minutes per experiment for real).
    samples = f["shards"] * IMAGES_PER_SHARD
    upstream = [f"results/data/{d}/splits/summary.csv" for d in cfg["datasets"]]
    for e in experiments:
        upstream += [f"results/{e}/explain/samples.csv", f"results/{e}/eval/test_summary.json"]
        upstream += [f"results/{e}/eval/plots/{p}.png" for p in EVAL_PLOTS]
    start = time.perf_counter()
    entry["upstream_jobs"] = stub_run(workdir, warm_cache, samples, upstream)
    entry["stub_upstream_s"] = round(time.perf_counter() - start, 1)

    entry["expanded"] = time_dry_runs(workdir, warm_cache, scratch, args.repeats, args.cold_repeats, "expanded")
    print(f"[{n}] expanded: {summary(entry['expanded'])}", flush=True)
    if args.batches > 1:
        entry["expanded_batch"] = time_batches(workdir, warm_cache, scratch, args, "expanded")
        print(f"[{n}] expanded, --batch all=1/{args.batches}: {entry['expanded_batch']['summary']}", flush=True)

    if not args.skip_noop:
        start = time.perf_counter()
        ran = stub_run(workdir, warm_cache, samples, [])
        entry["stub_rest_s"] = round(time.perf_counter() - start, 1)
        entry["dag_jobs"] = entry["upstream_jobs"] + ran
        entry["noop"] = time_dry_runs(workdir, warm_cache, scratch, args.repeats, args.cold_repeats, "noop")
        print(f"[{n}] noop: {summary(entry['noop'])}", flush=True)
        if args.batches > 1:
            entry["noop_batch"] = time_batches(workdir, warm_cache, scratch, args, "noop")
            print(f"[{n}] noop, --batch all=i/{args.batches}: {entry['noop_batch']['summary']}", flush=True)
    if not args.keep:
        shutil.rmtree(workdir)
    return entry


def bench_default(scratch: Path, warm_cache: Path, args) -> dict:
    """No-op dry run of the default config on a copy of this checkout's results and metadata."""
    workdir = make_workdir(scratch / "default", None)
    for name in ("results", ".snakemake"):
        subprocess.run(["cp", "-a", str(REPO / name), str(workdir / name)], check=True)
    shutil.rmtree(workdir / ".snakemake" / "locks", ignore_errors=True)
    entry: dict = {}
    _, _, out = run([*SNAKEMAKE, "-n"], workdir, warm_cache)
    stale = planned_jobs(out)
    if stale:
        reasons = sorted(set(re.findall(r"^    reason: (.*)$", out, flags=re.M)))
        entry["copy_not_up_to_date"] = {"planned_jobs": stale, "reasons": reasons[:10]}
        print(f"[default] copy plans {stale} jobs ({reasons[:3]}); --touch brings it up to date", flush=True)
        run([*SNAKEMAKE, "--touch", "--cores", "1"], workdir, warm_cache)
    entry["noop"] = time_dry_runs(workdir, warm_cache, scratch, args.repeats, args.cold_repeats, "noop")
    entry["metadata_records"] = sum(1 for _ in (workdir / ".snakemake" / "metadata").iterdir())
    print(f"[default] noop: {summary(entry['noop'])}", flush=True)
    # Snakemake's own start-up (no workflow): the floor of any dry run.
    entry["snakemake_version_s"] = []
    for _ in range(args.repeats):
        seconds, _, _ = run([*SNAKEMAKE, "--version"], workdir, warm_cache)
        entry["snakemake_version_s"].append(round(seconds, 3))
    entry["snakemake_version_median_s"] = round(statistics.median(entry["snakemake_version_s"]), 3)
    if not args.keep:
        shutil.rmtree(workdir)
    return entry


def main() -> None:
    if sys.argv[1:2] == [STUB_FLAG]:
        stub_snakemake()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[100, 1000, 10000], help="target job counts")
    ap.add_argument("--repeats", type=int, default=5, help="warm-cache dry runs per measurement")
    ap.add_argument("--cold-repeats", type=int, default=3, help="cold-cache dry runs per measurement")
    ap.add_argument("--batches", type=int, default=4,
                    help="also time `snakemake -n --batch all=1/K` (warm cache); 0 or 1 skips it")
    ap.add_argument("--no-default", action="store_true", help="skip the default config's no-op")
    ap.add_argument("--skip-noop", action="store_true", help="only fresh and expanded dry runs for --sizes")
    ap.add_argument("--keep", action="store_true", help="keep the temporary work folders")
    ap.add_argument("--tmp", default=None, help="parent of the temporary folder (default: system temp)")
    ap.add_argument("--out", default="bench/results/snakemake_overhead.json")
    args = ap.parse_args()

    base = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    scratch = Path(tempfile.mkdtemp(prefix="ferxai-smk-", dir=args.tmp))
    warm_cache = scratch / "warm-cache"
    warm_cache.mkdir()
    result = {"command": " ".join(["python", *sys.argv]),
              "snakemake": subprocess.run([*SNAKEMAKE, "--version"], capture_output=True, text=True).stdout.strip(),
              "python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
              "date": time.strftime("%Y-%m-%d %H:%M"), "images_per_shard": IMAGES_PER_SHARD, "sizes": []}
    out_path = REPO / args.out if not Path(args.out).is_absolute() else Path(args.out)

    def save() -> None:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(result, indent=1))

    try:
        # One dry run first, so that "warm" runs find bytecode and Snakemake's caches filled.
        make_workdir(scratch / "warmup", None)
        run([*SNAKEMAKE, "-n"], scratch / "warmup", warm_cache)
        shutil.rmtree(scratch / "warmup")
        if not args.no_default:
            result["default"] = bench_default(scratch, warm_cache, args)
            save()
        for n in args.sizes:
            result["sizes"].append(bench_size(n, base, scratch, warm_cache, args))
            save()
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    save()
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
