"""Checkpoint I/O: round trips, weights-only safety, bring-your-own weights, atomic writes."""

from __future__ import annotations

import logging
from collections import OrderedDict

import numpy as np
import pytest
import torch

from ferxai.models import (
    CheckpointError,
    build_model,
    checkpoint_meta,
    load_checkpoint,
    load_user_checkpoint,
    model_normalization,
    save_checkpoint,
)

CLASSES = ["angry", "happy", "neutral"]


def _trained_like(arch="fer_cnn", size=32, **options):
    """A model whose BN running stats differ from init, so a round trip checks buffers too."""
    torch.manual_seed(0)
    model = build_model(arch, len(CLASSES), 1, size, **options)
    model.train()
    with torch.no_grad():
        model(torch.rand(4, 1, size, size))
    return model.eval()


def _meta(model, arch="fer_cnn", size=32, **options):
    return checkpoint_meta(
        arch=arch, classes=CLASSES, in_channels=1, input_size=size,
        normalization=model_normalization(model), model_options=options, config_hash="abc123", epoch=3,
    )


def _out(model, size=32):
    torch.manual_seed(1)
    with torch.no_grad():
        return model(torch.rand(2, 1, size, size))


@pytest.mark.parametrize("arch,options", [("fer_cnn", {"widths": (8, 16), "dropout": 0.1}), ("resnet18", {})])
def test_round_trip_gives_identical_outputs(tmp_path, arch, options):
    model = _trained_like(arch, **options)
    path = save_checkpoint(tmp_path / "run" / "best.pt", model, _meta(model, arch, **options))
    loaded, meta = load_checkpoint(path)
    assert not loaded.training
    assert torch.equal(_out(model), _out(loaded))
    assert meta["arch"] == arch and meta["classes"] == CLASSES and meta["num_classes"] == 3
    assert meta["model_options"] == {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}
    assert meta["config_hash"] == "abc123" and meta["epoch"] == 3
    assert set(meta["versions"]) == {"torch", "torchvision", "ferxai", "python"}


def test_file_loads_with_plain_weights_only_torch_load(tmp_path):
    model = _trained_like()
    path = save_checkpoint(tmp_path / "best.pt", model, _meta(model))
    obj = torch.load(path, weights_only=True)
    assert set(obj) == {"state_dict", "meta"}
    assert all(t.device.type == "cpu" for t in obj["state_dict"].values())
    assert "input_norm.mean" in obj["state_dict"]


def test_atomic_save_leaves_no_temp_file(tmp_path):
    model = _trained_like()
    save_checkpoint(tmp_path / "best.pt", model, _meta(model))
    save_checkpoint(tmp_path / "best.pt", model, _meta(model))  # overwrite in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt"]


def test_failed_save_keeps_previous_file_and_no_temp(tmp_path, monkeypatch):
    model = _trained_like()
    path = save_checkpoint(tmp_path / "best.pt", model, _meta(model))
    before = path.read_bytes()

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, model, _meta(model))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt"]


def test_next_save_removes_what_a_killed_write_left(tmp_path):
    """SIGKILL mid-write leaves `.best.pt.<random>.tmp` (no handler runs); the next successful save
    of best.pt removes it, and only the leftovers of that file."""
    model = _trained_like()
    (tmp_path / ".best.pt.k1ll3d.tmp").write_bytes(b"half a checkpoint")
    (tmp_path / ".last.pt.k1ll3d.tmp").write_bytes(b"another file's leftover")
    (tmp_path / "best.pt.tmp").write_bytes(b"not ours")
    save_checkpoint(tmp_path / "best.pt", model, _meta(model))
    assert sorted(p.name for p in tmp_path.iterdir()) == [".last.pt.k1ll3d.tmp", "best.pt", "best.pt.tmp"]
    save_checkpoint(tmp_path / "last.pt", model, _meta(model))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "best.pt.tmp", "last.pt"]


def test_meta_must_be_plain_values(tmp_path):
    model = _trained_like()
    with pytest.raises(TypeError, match=r"meta\.val_f1.*float64"):
        save_checkpoint(tmp_path / "best.pt", model, _meta(model) | {"val_f1": np.float64(0.5)})
    with pytest.raises(ValueError, match="lacks"):
        save_checkpoint(tmp_path / "best.pt", model, {"arch": "fer_cnn"})
    assert not list(tmp_path.iterdir())


def test_pickled_module_is_refused(tmp_path):
    model = _trained_like()
    path = tmp_path / "whole_model.pt"
    torch.save(model, path)
    for load in (lambda: load_checkpoint(path),
                 lambda: load_user_checkpoint(path, "fer_cnn", CLASSES, 1, 32)):
        with pytest.raises(CheckpointError, match=r"pickled Python objects.*model\.state_dict\(\)") as info:
            load()
        assert str(path) in str(info.value)


def test_unreadable_and_missing_files(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_checkpoint(junk)
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")


def test_plain_state_dict_is_not_a_ferxai_checkpoint(tmp_path):
    model = _trained_like()
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    with pytest.raises(CheckpointError, match=r"not a ferxai checkpoint.*model\.checkpoint"):
        load_checkpoint(tmp_path / "sd.pt")


def _foreign_state_dict(model, prefix=""):
    """What another codebase would save: no ferxai normalisation buffers, maybe a prefix."""
    return OrderedDict((prefix + k, v.clone()) for k, v in model.state_dict().items()
                       if not k.startswith("input_norm."))


@pytest.mark.parametrize("wrap", ["plain", "state_dict", "model"])
def test_user_checkpoint_with_dataparallel_prefix(tmp_path, wrap):
    model = _trained_like("resnet18")
    sd = _foreign_state_dict(model, prefix="module.")
    obj = {"plain": sd, "state_dict": {"state_dict": sd, "epoch": 9}, "model": {"model": sd}}[wrap]
    torch.save(obj, tmp_path / "user.pt")
    loaded, meta = load_user_checkpoint(tmp_path / "user.pt", "resnet18", CLASSES, 1, 32,
                                        normalization={"mean": [0.5], "std": [0.5]})
    assert torch.equal(_out(model), _out(loaded))
    assert meta["arch"] == "resnet18" and meta["classes"] == CLASSES
    assert meta["source"] == str(tmp_path / "user.pt")
    assert meta["normalization"] == {"mean": [0.5], "std": [0.5]}


def test_user_normalization_is_applied_and_default_warns(tmp_path, caplog):
    model = _trained_like()
    torch.save(_foreign_state_dict(model), tmp_path / "user.pt")
    loaded, meta = load_user_checkpoint(tmp_path / "user.pt", "fer_cnn", CLASSES, 1, 32,
                                        normalization={"mean": [0.1], "std": [0.3]})
    assert meta["normalization"]["mean"] == pytest.approx([0.1])
    assert model_normalization(loaded)["std"] == pytest.approx([0.3])
    with caplog.at_level(logging.WARNING, logger="ferxai.models.checkpoint"):
        load_user_checkpoint(tmp_path / "user.pt", "fer_cnn", CLASSES, 1, 32)
    assert "no normalization given" in caplog.text


def test_ferxai_checkpoint_as_user_checkpoint_keeps_its_normalization(tmp_path):
    model = build_model("fer_cnn", 3, 1, 32, normalization={"mean": [0.4], "std": [0.2]}).eval()
    save_checkpoint(tmp_path / "best.pt", model, _meta(model))
    loaded, meta = load_user_checkpoint(tmp_path / "best.pt", "fer_cnn", CLASSES, 1, 32)
    assert meta["normalization"]["mean"] == pytest.approx([0.4])
    assert torch.equal(_out(model), _out(loaded))


def test_user_checkpoint_for_wrong_arch_is_clear(tmp_path):
    model = _trained_like("fer_cnn")
    torch.save(model.state_dict(), tmp_path / "user.pt")
    with pytest.raises(CheckpointError, match=r"user\.pt does not fit arch 'resnet18'.*missing keys: conv1\.weight"):
        load_user_checkpoint(tmp_path / "user.pt", "resnet18", CLASSES, 1, 32)


def test_user_checkpoint_with_other_class_count_is_clear(tmp_path):
    model = _trained_like("fer_cnn")
    torch.save(model.state_dict(), tmp_path / "user.pt")
    with pytest.raises(CheckpointError, match=r"shape mismatch in classifier\.weight.*do `classes` match"):
        load_user_checkpoint(tmp_path / "user.pt", "fer_cnn", CLASSES + ["sad"], 1, 32)


def test_user_checkpoint_that_is_not_a_state_dict(tmp_path):
    torch.save({"epoch": 3, "optimizer": {"lr": 0.1}}, tmp_path / "user.pt")
    with pytest.raises(CheckpointError, match=r"not tensors.*state_dict\(\)"):
        load_user_checkpoint(tmp_path / "user.pt", "fer_cnn", CLASSES, 1, 32)
