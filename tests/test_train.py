import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from ferxai.augment import AugmentSettings
from ferxai.models import build_model, load_checkpoint
from ferxai.train import EpochRecord, TrainSettings, batch_order, fit, train_experiment

NO_AUG = {"hflip": False, "max_shift": 0, "max_rotation": 0, "max_scale": 0, "brightness": 0, "contrast": 0}


def bars(n_per_class: int, size: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two classes told apart only by where a bright bar is: a task a CNN learns in a few epochs."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 60, size=(2 * n_per_class, 1, size, size), dtype=np.uint8)
    labels = np.repeat([0, 1], n_per_class)
    for i, y in enumerate(labels):
        row = rng.integers(2, size - 3)
        if y == 0:
            images[i, 0, row:row + 2, 2:size - 2] = 255  # horizontal bar
        else:
            images[i, 0, 2:size - 2, row:row + 2] = 255  # vertical bar
    return torch.from_numpy(images), torch.from_numpy(labels)


def small_model(seed=0):
    torch.manual_seed(seed)
    return build_model("fer_cnn", num_classes=2, in_channels=1, input_size=16, widths=[8, 8, 16])


def settings(**kw):
    base = {"epochs": 6, "batch_size": 16, "lr": 0.01, "device": "cpu", "augment": NO_AUG,
            "early_stopping_patience": 0}
    return TrainSettings.from_dict({**base, **kw})


def test_fit_learns_a_separable_task_and_logs_every_epoch():
    x, y = bars(48)
    vx, vy = bars(24, seed=1)
    records = fit(small_model(), x, y, vx, vy, 2, settings())
    assert [r.epoch for r in records] == list(range(1, 7))
    assert records[-1].val_accuracy >= 0.95
    assert records[-1].train_loss < records[0].train_loss
    assert all(r.seconds > 0 and r.lr >= 0 for r in records)


def test_fit_is_deterministic_under_a_seed():
    x, y = bars(16)
    vx, vy = bars(8, seed=1)
    s = settings(epochs=2, augment={"hflip": True, "max_shift": 0.1})
    a, b = small_model(), small_model()
    fit(a, x, y, vx, vy, 2, s)
    fit(b, x, y, vx, vy, 2, s)
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(pa, pb)


def test_early_stopping_stops_when_val_macro_f1_stalls():
    x, y = bars(16)
    vx, vy = bars(8, seed=1)
    # With lr 0 nothing changes, so macro-F1 never improves after epoch 1.
    records = fit(small_model(), x, y, vx, vy, 2, settings(epochs=10, lr=1e-12, scheduler="none",
                                                            early_stopping_patience=2))
    assert len(records) == 3


def test_class_balanced_order_draws_classes_evenly():
    labels = torch.tensor([0] * 90 + [1] * 10)
    order = batch_order(labels, 2, balanced=True, generator=torch.Generator().manual_seed(0))
    share = (labels[order] == 1).float().mean().item()
    assert 0.4 < share < 0.6
    plain = batch_order(labels, 2, balanced=False, generator=torch.Generator().manual_seed(0))
    assert sorted(plain.tolist()) == list(range(100))


def test_unknown_training_key_is_named():
    with pytest.raises(ValueError, match="epoch_count"):
        TrainSettings.from_dict({"epoch_count": 3})
    assert isinstance(TrainSettings.from_dict({}).augment, AugmentSettings)


def write_split(tmp_path, name, x, y):
    rows = []
    for i, (img, label) in enumerate(zip(x.numpy(), y.numpy())):
        path = tmp_path / "img" / f"{name}_{i}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(img[0]).save(path)
        rows.append({"id": f"{name}_{i}", "source": str(path), "label": int(label), "label_name": "hv"[label],
                     "subject": "", "source_split": "", "width": 16, "height": 16, "channels": 1,
                     "content_hash": f"{name}{i}"})
    csv = tmp_path / f"{name}.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return csv


def test_train_experiment_writes_checkpoints_and_log(tmp_path):
    x, y = bars(24)
    vx, vy = bars(8, seed=1)
    train_csv, val_csv = write_split(tmp_path, "train", x, y), write_split(tmp_path, "val", vx, vy)
    out = tmp_path / "model"
    records = train_experiment(
        train_csv, val_csv, ["h", "v"],
        {"arch": "fer_cnn", "input_size": 16, "channels": 1, "options": {"widths": [8, 8, 16]}},
        {"epochs": 3, "batch_size": 16, "lr": 0.01, "device": "cpu", "augment": NO_AUG},
        best_path=out / "best.pt", last_path=out / "last.pt", log_path=out / "train_log.jsonl",
    )
    lines = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2, 3] == [r.epoch for r in records]
    assert set(lines[0]) == {"epoch", "train_loss", "val_loss", "val_accuracy", "val_macro_f1", "lr", "seconds"}

    raw = torch.load(out / "best.pt", weights_only=True)  # must not need pickle
    assert set(raw) == {"state_dict", "meta"}
    model, meta = load_checkpoint(out / "best.pt")
    best = max(records, key=lambda r: r.val_macro_f1)
    assert meta["epoch"] == best.epoch and meta["classes"] == ["h", "v"]
    assert meta["arch"] == "fer_cnn" and meta["input_size"] == 16 and len(meta["config_hash"]) == 16
    assert "torch" in meta["versions"]
    _, last_meta = load_checkpoint(out / "last.pt")
    assert last_meta["epoch"] == 3
    with torch.no_grad():
        assert model(torch.rand(2, 1, 16, 16)).shape == (2, 2)


# --- resuming an interrupted run ---------------------------------------------------------------

class Interrupted(Exception):
    """Stands in for a kill: raised from the epoch callback, after that epoch's outputs are written."""


def stop_at(epoch):
    def callback(record, is_best):
        if record.epoch == epoch:
            raise Interrupted
    return callback


def without_seconds(records):
    return [{**r.__dict__, "seconds": None} for r in records]


def assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


@pytest.mark.parametrize("kw", [
    {"augment": {}},  # default augmentation: draws from the data generator every batch
    {"optimizer": "sgd", "scheduler": "step", "step_size": 2, "class_balanced_sampling": True},
    {"scheduler": "plateau", "label_smoothing": 0.1, "augment": {}},
], ids=["adamw-cosine-augment", "sgd-step-balanced", "plateau"])
def test_interrupted_fit_resumes_bit_identically(tmp_path, caplog, kw):
    x, y = bars(24)
    vx, vy = bars(8, seed=1)
    s = settings(epochs=5, **kw)
    reference = small_model()
    expected = fit(reference, x, y, vx, vy, 2, s)

    state = tmp_path / ".resume.pt"
    with pytest.raises(Interrupted):
        fit(small_model(), x, y, vx, vy, 2, s, stop_at(3), resume_path=state)
    saved = torch.load(state, weights_only=True)  # loads without unpickling code
    assert saved["epoch"] == 2 and [r["epoch"] for r in saved["records"]] == [1, 2]

    seen = []
    model = small_model()
    with caplog.at_level("INFO", logger="ferxai.train"):
        records = fit(model, x, y, vx, vy, 2, s, resume_path=state,
                      on_resume=lambda rs, best, weights: seen.append(([r.epoch for r in rs], best)))
    assert "resuming from epoch 3 of 5" in caplog.text
    assert seen and seen[0][0] == [1, 2] and seen[0][1] in (1, 2)
    assert_same_weights(model, reference)
    assert without_seconds(records) == without_seconds(expected)
    assert records[:2] == [EpochRecord(**r) for r in saved["records"]]  # earlier epochs kept as logged
    assert not state.exists()  # finished: nothing left to resume


def test_resume_restores_the_early_stopping_counter(tmp_path):
    x, y = bars(16)
    vx, vy = bars(8, seed=1)
    # lr ~0: val macro-F1 never improves after epoch 1, so patience 2 stops after epoch 3.
    s = settings(epochs=10, lr=1e-12, scheduler="none", early_stopping_patience=2)
    state = tmp_path / ".resume.pt"
    with pytest.raises(Interrupted):
        fit(small_model(), x, y, vx, vy, 2, s, stop_at(3), resume_path=state)
    records = fit(small_model(), x, y, vx, vy, 2, s, resume_path=state)
    assert [r.epoch for r in records] == [1, 2, 3]
    assert not state.exists()


@pytest.mark.parametrize("change", ["settings", "data", "model"])
def test_resume_state_of_another_run_is_ignored_with_the_reason(tmp_path, caplog, change):
    x, y = bars(16)
    vx, vy = bars(8, seed=1)
    s = settings(epochs=3)
    state = tmp_path / ".resume.pt"
    with pytest.raises(Interrupted):
        fit(small_model(), x, y, vx, vy, 2, s, stop_at(3), resume_path=state)

    model = small_model(seed=1) if change == "model" else small_model()
    if change == "settings":
        s = settings(epochs=3, lr=0.02)
    if change == "data":
        x, y = bars(16, seed=2)
    reference = small_model(seed=1) if change == "model" else small_model()
    expected = fit(reference, x, y, vx, vy, 2, s)
    with caplog.at_level("INFO", logger="ferxai.train"):
        records = fit(model, x, y, vx, vy, 2, s, resume_path=state)
    assert "resuming" not in caplog.text
    reason = {"settings": "lr: 0.01 -> 0.02", "data": "data changed", "model": "model"}[change]
    assert f"ignoring resume state {state}" in caplog.text and reason in caplog.text
    assert [r.epoch for r in records] == [1, 2, 3]
    assert_same_weights(model, reference)
    assert without_seconds(records) == without_seconds(expected)


@pytest.mark.parametrize("damage", ["truncated", "junk", "foreign"])
def test_damaged_resume_state_warns_and_trains_from_scratch(tmp_path, caplog, damage):
    # The state only saves time: training from epoch 1 gives the same result, so a damaged file
    # must not fail a job that would otherwise succeed (and is overwritten after the next epoch).
    x, y = bars(16)
    vx, vy = bars(8, seed=1)
    s = settings(epochs=3)
    state = tmp_path / ".resume.pt"
    with pytest.raises(Interrupted):
        fit(small_model(), x, y, vx, vy, 2, s, stop_at(3), resume_path=state)
    blob = state.read_bytes()
    if damage == "truncated":
        state.write_bytes(blob[: len(blob) // 2])
    elif damage == "junk":
        state.write_bytes(b"not a torch file")
    else:
        torch.save({"state_dict": small_model().state_dict()}, state)  # readable, but not a resume state

    reference = small_model()
    expected = fit(reference, x, y, vx, vy, 2, s)
    model = small_model()
    with caplog.at_level("INFO", logger="ferxai.train"):
        records = fit(model, x, y, vx, vy, 2, s, resume_path=state)
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and str(state) in warnings[0].getMessage()
    assert "training from epoch 1" in warnings[0].getMessage()
    assert_same_weights(model, reference)
    assert without_seconds(records) == without_seconds(expected)
    assert not state.exists()


@pytest.mark.parametrize("lr", [0.01, 1e-12], ids=["learning", "best-before-the-kill"])
def test_train_experiment_resumes_and_rewrites_the_deleted_outputs(tmp_path, monkeypatch, caplog, lr):
    """Killed during epoch 3; Snakemake then deletes the job's outputs and runs it again.

    With lr ~0 the best epoch is 1, before the kill, so best.pt can only come from the saved state.
    """
    import ferxai.models

    x, y = bars(24)
    vx, vy = bars(8, seed=1)
    train_csv, val_csv = write_split(tmp_path, "train", x, y), write_split(tmp_path, "val", vx, vy)
    model_settings = {"arch": "fer_cnn", "input_size": 16, "channels": 1, "options": {"widths": [8, 8, 16]}}
    train_settings = {"epochs": 5, "batch_size": 16, "lr": lr, "device": "cpu", "early_stopping_patience": 0}

    def run(out, resume=True):
        return train_experiment(train_csv, val_csv, ["h", "v"], model_settings, train_settings,
                                best_path=out / "best.pt", last_path=out / "last.pt",
                                log_path=out / "train_log.jsonl",
                                resume_path=out / ".resume.pt" if resume else None)

    expected = run(tmp_path / "reference", resume=False)

    out = tmp_path / "model"
    real_save = ferxai.models.save_checkpoint

    def save_then_die(path, model, meta):
        real_save(path, model, meta)
        if meta["epoch"] == 3:
            raise KeyboardInterrupt  # the last.pt of epoch 3 is written, its resume state is not

    monkeypatch.setattr(ferxai.models, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        run(out)
    monkeypatch.undo()
    assert (out / ".resume.pt").exists()
    for name in ("best.pt", "last.pt", "train_log.jsonl"):
        (out / name).unlink()

    with caplog.at_level("INFO", logger="ferxai.train"):
        records = run(out)
    assert "resuming from epoch 3 of 5" in caplog.text
    assert without_seconds(records) == without_seconds(expected)
    lines = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    ref_lines = [json.loads(line) for line in (tmp_path / "reference" / "train_log.jsonl").read_text().splitlines()]
    assert [{**r, "seconds": None} for r in lines] == [{**r, "seconds": None} for r in ref_lines]
    for name in ("best.pt", "last.pt"):
        assert (out / name).read_bytes() == (tmp_path / "reference" / name).read_bytes(), name
    assert sorted(p.name for p in out.iterdir()) == ["best.pt", "last.pt", "train_log.jsonl"]
    if lr < 1e-6:
        assert load_checkpoint(out / "best.pt")[1]["epoch"] == 1


# --- shuffled labels (the data-randomisation sanity check) -------------------------------------

def test_shuffled_labels_are_a_seeded_permutation():
    from ferxai.train import shuffled_labels

    labels = np.repeat(np.arange(7), 30)
    shuffled = shuffled_labels(labels, seed=0)
    assert sorted(shuffled.tolist()) == labels.tolist()           # the same class counts
    assert (shuffled != labels).mean() > 0.7                       # most images get another class
    np.testing.assert_array_equal(shuffled, shuffled_labels(labels, seed=0))
    assert not np.array_equal(shuffled, shuffled_labels(labels, seed=1))


def test_a_model_trained_on_shuffled_labels_cannot_learn_the_task(tmp_path):
    x, y = bars(48)
    vx, vy = bars(16, seed=1)
    train_csv, val_csv = write_split(tmp_path, "train", x, y), write_split(tmp_path, "val", vx, vy)
    model_settings = {"arch": "fer_cnn", "input_size": 16, "channels": 1, "options": {"widths": [8, 8, 16]}}
    accuracy = {}
    for shuffle in (False, True):
        out = tmp_path / f"shuffle_{shuffle}"
        records = train_experiment(
            train_csv, val_csv, ["h", "v"], model_settings,
            {"epochs": 6, "batch_size": 16, "lr": 0.01, "device": "cpu", "augment": NO_AUG,
             "shuffle_labels": shuffle, "early_stopping_patience": 0},
            best_path=out / "best.pt", last_path=out / "last.pt", log_path=out / "train_log.jsonl")
        accuracy[shuffle] = records[-1].val_accuracy
    assert accuracy[False] > 0.9 and accuracy[True] < 0.8


def test_training_parts_are_disjoint_class_stratified_and_cover_the_split():
    from ferxai.train import training_part

    labels = np.repeat(np.arange(3), [10, 7, 4])
    parts = [training_part(labels, p, 3) for p in range(3)]
    assert sorted(np.concatenate(parts).tolist()) == list(range(len(labels)))   # disjoint and complete
    for part in parts:
        assert np.all(np.diff(part) > 0)                                         # in split order
        counts = np.bincount(labels[part], minlength=3)
        assert np.all(np.abs(counts - np.array([10, 7, 4]) / 3) < 1)             # every class, evenly
    np.testing.assert_array_equal(parts[0], training_part(labels, 0, 3))         # one partition for all
    with pytest.raises(ValueError, match=r"train\.data_part: 3 is not a part of 3"):
        training_part(labels, 3, 3)


def test_a_model_trained_on_one_part_sees_only_that_part(tmp_path, caplog):
    x, y = bars(16)
    vx, vy = bars(8, seed=1)
    train_csv, val_csv = write_split(tmp_path, "train", x, y), write_split(tmp_path, "val", vx, vy)
    model_settings = {"arch": "fer_cnn", "input_size": 16, "channels": 1, "options": {"widths": [8, 8, 16]}}
    with caplog.at_level("INFO", logger="ferxai.train"):
        train_experiment(train_csv, val_csv, ["h", "v"], model_settings,
                         {"epochs": 1, "batch_size": 8, "device": "cpu", "augment": NO_AUG,
                          "data_parts": 2, "data_part": 1},
                         best_path=tmp_path / "best.pt", last_path=tmp_path / "last.pt",
                         log_path=tmp_path / "train_log.jsonl")
    assert "training on part 2 of 2" in caplog.text and ": 16 images" in caplog.text
