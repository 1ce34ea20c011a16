"""MLflow logging of the run records (ferxai.tracking) against a real `mlflow server` on
127.0.0.1 with a SQLite backend and an artifact store in a temporary folder."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ferxai.records import write_record, write_runs
from ferxai.tracking import flatten, log_records, main, record_metrics

if importlib.util.find_spec("mlflow") is None:
    pytest.skip("mlflow is not installed (pip install -e '.[tracking]')", allow_module_level=True)


def MlflowClient(tracking_uri: str):  # noqa: N802
    # imported only here, with HOME and telemetry set by _no_home: importing mlflow writes an
    # installation id under ~/.config unless telemetry is off
    from mlflow.tracking import MlflowClient as Client

    return Client(tracking_uri=tracking_uri)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`mlflow server` in its own process group, HOME and stores in a temporary folder; yields its
    URI once /health answers, and is always stopped."""
    root = tmp_path_factory.mktemp("mlflow")
    (root / "home").mkdir()
    port = free_port()
    env = {**os.environ, "HOME": str(root / "home"), "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    log = (root / "server.log").open("w")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "artifacts"),
         "--workers", "1"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # starting up (migrating the empty database) takes seconds
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited ({proc.returncode}):\n{(root / 'server.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server not ready:\n{(root / 'server.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield {"uri": uri, "root": root}
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass
        log.close()


@pytest.fixture(autouse=True)
def _no_home(tmp_path, monkeypatch):
    # nothing the client does may land in the real home folder
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.chdir(tmp_path)


def record(experiment: str, lr: float = 0.01, pointing: float = 0.75) -> dict:
    return {
        "experiment": experiment, "dataset": "tiny", "model": "cnn", "arch": "fer_cnn", "model_from": "",
        "config_hash": f"hash-{experiment}-{lr}", "git_commit": "0" * 40, "git_dirty": False, "status": "methods failed",
        "missing": [], "scores_status": "methods failed", "failed_methods": {"broken_cam": "no layer"},
        "test": {"accuracy": 0.9, "macro_f1": 0.85, "num_samples": 20},
        "scores": [
            {"method": "saliency", "condition": "clean", "metric": "pointing_game", "mean": repr(pointing),
             "ci_low": "0.5", "ci_high": "1.0", "n": "4", "status": "ok", "reason": ""},
            {"method": "broken_cam", "condition": "clean", "metric": "pointing_game", "mean": "",
             "ci_low": "", "ci_high": "", "n": "0", "status": "failed", "reason": "no layer"},
        ],
        "paths": {"model": f"results/{experiment}/model/best.pt", "explain_store": f"results/{experiment}/explain/store.zarr",
                  "scores": f"results/{experiment}/assess/scores.csv", "scores_store": "",
                  "record": f"results/runs/{experiment}.json"},
        "config": {"train": {"lr": lr, "epochs": 2, "augment": {"hflip": True}}, "model_from": None,
                   "explain": {"methods": {"saliency": {"method": "saliency", "params": {}}},
                               "conditions": ["clean"]}},
    }


def write(tmp_path: Path, rec: dict) -> Path:
    path = tmp_path / rec["paths"]["record"]
    write_record(path, rec)
    return path


def runs_of(client, name: str) -> dict[str, object]:
    experiment = client.get_experiment_by_name(name)
    return {r.data.tags["ferxai.experiment"]: r for r in client.search_runs([experiment.experiment_id])}


def test_flatten_gives_dotted_keys_and_json_leaves():
    assert flatten({"train": {"lr": 0.01, "augment": {"hflip": True}}, "sets": ["a", "b"], "name": "x",
                    "none": None, "empty": {}}) == {
        "train.lr": "0.01", "train.augment.hflip": "true", "sets": '["a", "b"]', "name": "x", "none": "null",
        "empty": "{}"}
    assert record_metrics(record("e")) == {"test/accuracy": 0.9, "test/macro_f1": 0.85, "test/num_samples": 20.0,
                                           "score/clean/saliency/pointing_game": 0.75}


def test_records_are_runs_with_params_metrics_tags_and_the_record(server, tmp_path):
    paths = [write(tmp_path, record("tiny_cnn")), write(tmp_path, record("tiny_res", lr=0.02))]
    settings = {"mlflow_uri": server["uri"], "experiment_name": "records-test"}
    result = log_records(paths, settings)
    assert {e: r["action"] for e, r in result["runs"].items()} == {"tiny_cnn": "created", "tiny_res": "created"}

    client = MlflowClient(tracking_uri=server["uri"])
    runs = runs_of(client, "records-test")
    assert set(runs) == {"tiny_cnn", "tiny_res"}
    run = runs["tiny_cnn"]
    assert run.info.run_id == result["runs"]["tiny_cnn"]["run_id"] and run.info.status == "FINISHED"
    assert run.info.run_name == "tiny_cnn"
    assert run.data.params["train.lr"] == "0.01" and runs["tiny_res"].data.params["train.lr"] == "0.02"
    assert run.data.params["train.augment.hflip"] == "true" and run.data.params["explain.conditions"] == '["clean"]'
    assert run.data.metrics == {"test/accuracy": 0.9, "test/macro_f1": 0.85, "test/num_samples": 20.0,
                                "score/clean/saliency/pointing_game": 0.75}
    tags = run.data.tags
    assert tags["ferxai.config_hash"] == "hash-tiny_cnn-0.01" and tags["ferxai.git_commit"] == "0" * 40
    assert tags["ferxai.failed_methods"] == "broken_cam" and tags["ferxai.status"] == "methods failed"
    assert tags["path.explain_store"] == "results/tiny_cnn/explain/store.zarr"
    assert "path.scores_store" not in tags  # not made: no tag
    # the record itself is the run's one artifact, as written
    assert [f.path for f in client.list_artifacts(run.info.run_id, "record")] == ["record/tiny_cnn.json"]
    local = client.download_artifacts(run.info.run_id, "record/tiny_cnn.json", str(tmp_path))
    assert json.loads(Path(local).read_text()) == json.loads(paths[0].read_text())
    # queryable by tag and metric
    found = client.search_runs([run.info.experiment_id], "tags.`ferxai.experiment` = 'tiny_res'")
    assert [r.info.run_id for r in found] == [runs["tiny_res"].info.run_id]
    best = client.search_runs([run.info.experiment_id], "metrics.`score/clean/saliency/pointing_game` > 0.5")
    assert len(best) == 2


def test_logging_again_does_not_duplicate_runs(server, tmp_path):
    settings = {"mlflow_uri": server["uri"], "experiment_name": "rerun-test"}
    first = log_records([write(tmp_path, record("tiny_cnn"))], settings)["runs"]["tiny_cnn"]
    again = log_records([write(tmp_path, record("tiny_cnn"))], settings)["runs"]["tiny_cnn"]
    assert again == {"run_id": first["run_id"], "action": "unchanged"}
    client = MlflowClient(tracking_uri=server["uri"])
    assert len(client.get_metric_history(first["run_id"], "score/clean/saliency/pointing_game")) == 1

    # the same configuration with another result (say, a code fix): the same run, updated
    changed = record("tiny_cnn", pointing=0.5)
    changed["git_commit"] = "1" * 40
    updated = log_records([write(tmp_path, changed)], settings)["runs"]["tiny_cnn"]
    assert updated == {"run_id": first["run_id"], "action": "updated"}
    run = client.get_run(first["run_id"])
    assert run.data.metrics["score/clean/saliency/pointing_game"] == 0.5
    assert run.data.tags["ferxai.git_commit"] == "1" * 40
    history = client.get_metric_history(first["run_id"], "score/clean/saliency/pointing_game")
    assert sorted(m.value for m in history) == [0.5, 0.75]

    # another configuration: a run of its own
    other = log_records([write(tmp_path, record("tiny_cnn", lr=0.5))], settings)["runs"]["tiny_cnn"]
    assert other["action"] == "created" and other["run_id"] != first["run_id"]
    experiment = client.get_experiment_by_name("rerun-test")
    assert len(client.search_runs([experiment.experiment_id])) == 2


def test_the_command_line_logs_the_records_a_runs_csv_names(server, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_DISABLE_TELEMETRY")  # the library turns it off itself
    records = [record("tiny_cnn"), record("tiny_res", lr=0.02)]
    for rec in records:
        write(tmp_path, rec)
    write_runs(records, tmp_path / "results" / "runs.csv", tmp_path / "results" / "runs_scores.csv")
    assert main([str(tmp_path / "results" / "runs.csv"), "--uri", server["uri"], "--experiment-name", "cli-test"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed["runs"]) == {"tiny_cnn", "tiny_res"}
    client = MlflowClient(tracking_uri=server["uri"])
    assert set(runs_of(client, "cli-test")) == {"tiny_cnn", "tiny_res"}
    assert main([str(tmp_path / "results" / "runs.csv"), "--uri", "not a uri"]) == 1
    assert "tracking.mlflow_uri" in capsys.readouterr().err
    home = tmp_path / "home"
    assert not home.exists() or not any(home.iterdir()), sorted(home.rglob("*"))
