"""Supervised training with early stopping on validation macro-F1.

`fit` is the loop (model + tensors in, per-epoch records out, checkpoints written as it goes);
`train_experiment` is what the pipeline calls: split files and settings in, checkpoints and a
JSON-lines log out.

Resuming: given a `resume_path`, `fit` saves everything the next epoch depends on (weights,
optimizer, scheduler, loss scaler, every RNG, early-stopping bookkeeping, the epoch records) to
that file after each epoch, and a later call with the same model, data and settings continues
from the next epoch, bit for bit as if it had never stopped (on CPU; on a GPU as far as its kernels
are deterministic). The file is deleted when training finishes. It is deliberately not a Snakemake output: Snakemake deletes the outputs of an
incomplete job before running it again.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from ferxai.augment import AugmentSettings, augment_batch
from ferxai.settings import Settings, config_hash
from ferxai.device import autocast_for, make_grad_scaler, resolve_device
from ferxai.metrics import macro_f1

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainSettings(Settings):
    section = "train"

    epochs: int = 12
    batch_size: int = 32
    optimizer: str = "adamw"
    lr: float = 2e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9
    scheduler: str = "cosine"
    step_size: int = 5
    gamma: float = 0.1
    label_smoothing: float = 0.0
    class_balanced_sampling: bool = False
    early_stopping_patience: int = 4
    # the data-randomisation sanity check (Adebayo et al. 2018): train on a seeded permutation of
    # the training labels, so the model can only memorise; validation keeps the true labels
    shuffle_labels: bool = False
    # train on part `data_part` of `data_parts` disjoint, class-stratified parts of the training
    # split (replicates on disjoint data: experiments.<name>.replicate_data: disjoint)
    data_parts: int = 1
    data_part: int = 0
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    augment: AugmentSettings = field(default_factory=AugmentSettings)


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    val_macro_f1: float
    lr: float
    seconds: float


SHUFFLE_STREAM = 7  # the label permutation's generator: default_rng([seed, SHUFFLE_STREAM])
PART_STREAM = 11  # the generator of the disjoint training parts (training_part)


def training_part(labels: np.ndarray, part: int, parts: int) -> np.ndarray:
    """Indices (ascending) of part `part` of `parts` disjoint parts of a training split with these
    labels: each class's images shuffled and dealt out in turn, so every part has about 1/parts of
    every class. The shuffle does not depend on the training seed: replicates with different seeds
    get parts of one partition."""
    labels = np.asarray(labels)
    if not 0 <= part < parts:
        raise ValueError(f"train.data_part: {part} is not a part of {parts} (0 to {parts - 1})")
    rng = np.random.default_rng(PART_STREAM)
    chosen = [rng.permutation(np.flatnonzero(labels == c))[part::parts] for c in np.unique(labels)]
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def shuffled_labels(labels: np.ndarray, seed: int) -> np.ndarray:
    """A seeded permutation of `labels` (the same class counts, assigned to other images)."""
    return np.random.default_rng([int(seed), SHUFFLE_STREAM]).permutation(np.asarray(labels))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
        # Reproducible convolutions on CUDA cost a little speed; results must not depend on the run.
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


RESUME_FORMAT = 1


def _digest_tensor(h: "hashlib._Hash", t: torch.Tensor) -> None:
    t = t.detach().to("cpu").contiguous().reshape(-1)
    h.update(f"{t.dtype}{tuple(t.shape)}".encode())
    h.update(t.view(torch.uint8).numpy().tobytes())


def run_fingerprint(
    model: nn.Module,
    tensors: Sequence[torch.Tensor],
    num_classes: int,
    settings: TrainSettings,
) -> dict[str, str]:
    """What a training run is a function of, in parts that can be compared and reported separately.

    `model` is hashed as handed to `fit` (architecture, options and initial or pretrained weights
    all show in its state dict); `tensors` are the train/val images and labels.
    """
    model_hash = hashlib.sha256()
    for name, value in model.state_dict().items():
        model_hash.update(name.encode())
        _digest_tensor(model_hash, value)
    data_hash = hashlib.sha256(f"classes={num_classes}".encode())
    for t in tensors:
        _digest_tensor(data_hash, t)
    return {
        "settings": json.dumps(asdict(settings), sort_keys=True),
        "data": data_hash.hexdigest(),
        "model": model_hash.hexdigest(),
        "torch": str(torch.__version__),
    }


def _fingerprint_difference(saved: Mapping[str, Any], now: Mapping[str, str]) -> str | None:
    """Why a saved fingerprint does not match `now`, in words; None when it matches."""
    if not isinstance(saved, Mapping):
        return "it has no fingerprint"
    reasons = []
    if saved.get("settings") != now["settings"]:
        try:
            old, new = json.loads(saved["settings"]), json.loads(now["settings"])
            changed = [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(old) | set(new))
                       if old.get(k) != new.get(k)]
            reasons.append("training settings changed (" + "; ".join(changed) + ")")
        except (TypeError, ValueError, KeyError):
            reasons.append("training settings changed")
    if saved.get("data") != now["data"]:
        reasons.append("the train/val data changed")
    if saved.get("model") != now["model"]:
        reasons.append("the model (architecture, options or initial weights) changed")
    if saved.get("torch") != now["torch"]:
        reasons.append(f"torch changed ({saved.get('torch')} -> {now['torch']})")
    return ", ".join(reasons) or None


def _cpu_state(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


def _rng_state(generator: torch.Generator, device: torch.device) -> dict[str, Any]:
    """Every random stream training draws from, as tensors and plain values (weights-only loadable)."""
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "numpy": {"kind": str(np_kind), "keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
                  "pos": int(np_pos), "has_gauss": int(np_has_gauss), "cached_gaussian": float(np_gauss)},
        "python": {"version": int(py_version), "internal": torch.tensor(py_internal, dtype=torch.int64),
                   "gauss_next": py_gauss},
        "generator": generator.get_state(),
    }


def _set_rng_state(state: Mapping[str, Any], generator: torch.Generator, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"], device)
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["internal"].tolist()), p["gauss_next"]))
    generator.set_state(state["generator"])


def _read_resume_state(path: Path, fingerprint: Mapping[str, str]) -> dict[str, Any] | None:
    """The saved state at `path` if it belongs to this run; otherwise None, with a log line saying why.

    A damaged state is skipped with a warning rather than failing the job: it only ever saves
    time, training from scratch gives the same result, and the next epoch overwrites it.
    """
    from ferxai.models.checkpoint import CheckpointError, load_weights_only

    if not path.is_file():
        return None
    try:
        state = load_weights_only(path, "cpu")
    except CheckpointError as exc:
        log.warning("ignoring resume state, training from epoch 1: %s", exc)
        return None
    if not isinstance(state, Mapping) or state.get("format") != RESUME_FORMAT:
        log.warning("ignoring resume state %s, training from epoch 1: not a ferxai resume state "
                    "(format %r)", path, state.get("format") if isinstance(state, Mapping) else None)
        return None
    why = _fingerprint_difference(state.get("fingerprint"), fingerprint)
    if why:
        log.info("ignoring resume state %s, training from epoch 1: it was written for another run: %s",
                 path, why)
        return None
    return dict(state)


def _clear_resume_state(path: Path) -> None:
    from ferxai.atomic import remove_leftovers

    path.unlink(missing_ok=True)
    remove_leftovers(path)  # a killed process's unfinished write of the state


def to_float(images_uint8: torch.Tensor, device: torch.device) -> torch.Tensor:
    return images_uint8.to(device, non_blocking=True).float().div_(255.0)


def make_optimizer(model: nn.Module, s: TrainSettings) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if s.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=s.lr, weight_decay=s.weight_decay)
    if s.optimizer == "adam":
        return torch.optim.Adam(params, lr=s.lr, weight_decay=s.weight_decay)
    if s.optimizer == "sgd":
        return torch.optim.SGD(params, lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay, nesterov=True)
    raise ValueError(f"train.optimizer: unknown optimizer {s.optimizer!r} (adamw, adam, sgd)")


def make_scheduler(optimizer: torch.optim.Optimizer, s: TrainSettings, steps_per_epoch: int):
    """Returns (scheduler, when) where `when` is 'step', 'epoch', 'plateau' or None."""
    if s.scheduler == "cosine":
        total = max(1, s.epochs * steps_per_epoch)
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total), "step"
    if s.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=s.step_size, gamma=s.gamma), "epoch"
    if s.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=s.gamma, patience=1), "plateau"
    if s.scheduler == "none":
        return None, None
    raise ValueError(f"train.scheduler: unknown scheduler {s.scheduler!r} (cosine, step, plateau, none)")


def batch_order(labels: torch.Tensor, num_classes: int, balanced: bool, generator: torch.Generator) -> torch.Tensor:
    """Indices for one epoch: a permutation, or draws weighted by inverse class frequency."""
    n = len(labels)
    if not balanced:
        return torch.randperm(n, generator=generator)
    counts = torch.bincount(labels, minlength=num_classes).clamp(min=1).float()
    weights = (1.0 / counts)[labels]
    return torch.multinomial(weights, n, replacement=True, generator=generator)


@torch.no_grad()
def predict_logits(model: nn.Module, images: torch.Tensor, device: torch.device, batch_size: int, amp: bool = True) -> torch.Tensor:
    """Logits (float32, on CPU) for uint8 images (N, C, H, W), in eval mode."""
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        x = to_float(images[start:start + batch_size], device)
        with autocast_for(device, amp):
            out.append(model(x).float().cpu())
    if not out:
        return torch.empty(0)
    return torch.cat(out)


def fit(
    model: nn.Module,
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    val_images: torch.Tensor,
    val_labels: torch.Tensor,
    num_classes: int,
    settings: TrainSettings,
    on_epoch_end: Callable[[EpochRecord, bool], None] | None = None,
    resume_path: str | Path | None = None,
    on_resume: Callable[[list[EpochRecord], int, dict[str, torch.Tensor] | None], None] | None = None,
) -> list[EpochRecord]:
    """Train `model` in place; `on_epoch_end(record, is_best)` persists whatever the caller needs.

    Images are uint8 (N, C, H, W) tensors on the CPU; batches are moved to the device as needed.
    Early stopping watches val macro-F1 (accuracy hides a collapsed minority class).

    With `resume_path`, the state after each epoch is saved there, and a state left by an
    interrupted call with the same model, data and settings is continued from its next epoch;
    `on_resume(records so far, best epoch, its weights)` then lets the caller rewrite what it
    persists (the returned records include the restored ones; best epoch 0 and weights None when
    no epoch has improved on the start yet). The file is removed when training ends.
    """
    fingerprint = run_fingerprint(model, (train_images, train_labels, val_images, val_labels),
                                  num_classes, settings) if resume_path is not None else None
    seed_everything(settings.seed)  # dropout draws from the global generator
    device = resolve_device(settings.device)
    use_amp = settings.amp and device.type == "cuda"
    model.to(device)
    generator = torch.Generator().manual_seed(settings.seed)
    optimizer = make_optimizer(model, settings)
    steps = math.ceil(len(train_labels) / settings.batch_size)
    scheduler, when = make_scheduler(optimizer, settings, steps)
    scaler = make_grad_scaler(device, use_amp)
    log.info("training on %s (amp=%s): %d train / %d val images, %d steps per epoch",
             device, use_amp, len(train_labels), len(val_labels), steps)

    records: list[EpochRecord] = []
    best_f1, since_best = -1.0, 0
    best_epoch, best_state = 0, None  # best weights are only kept for the resume state
    start_epoch = 1
    if resume_path is not None:
        resume_path = Path(resume_path)
        state = _read_resume_state(resume_path, fingerprint)
        if state is not None:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            if scheduler is not None:
                scheduler.load_state_dict(state["scheduler"])
            if use_amp and state.get("scaler"):
                scaler.load_state_dict(state["scaler"])
            _set_rng_state(state["rng"], generator, device)
            records = [EpochRecord(**row) for row in state["records"]]
            best_f1, since_best = float(state["best_f1"]), int(state["since_best"])
            best_epoch, best_state = int(state["best_epoch"]), state["best_model"]
            start_epoch = int(state["epoch"]) + 1
            done = "epoch 1" if start_epoch == 2 else f"epochs 1-{start_epoch - 1}"
            log.info("resuming from epoch %d of %d: %s finished in an earlier run (state in %s)",
                     start_epoch, settings.epochs, done, resume_path)
            if on_resume is not None:
                on_resume(list(records), best_epoch, best_state)

    for epoch in range(start_epoch, settings.epochs + 1):
        started = time.perf_counter()
        model.train()
        order = batch_order(train_labels, num_classes, settings.class_balanced_sampling, generator)
        total_loss, seen = 0.0, 0
        bar = tqdm(range(0, len(order), settings.batch_size), desc=f"epoch {epoch}/{settings.epochs}",
                   unit="batch", mininterval=10, ascii=True)
        for start in bar:
            idx = order[start:start + settings.batch_size]
            if len(idx) < 2 and len(order) > 1:
                continue  # a batch of one breaks batch norm and adds nothing
            x = to_float(train_images[idx], device)
            y = train_labels[idx].to(device)
            x = augment_batch(x, settings.augment, generator)
            with autocast_for(device, use_amp):
                loss = F.cross_entropy(model(x), y, label_smoothing=settings.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            if when == "step":
                scheduler.step()
            total_loss += loss.item() * len(idx)
            seen += len(idx)
        lr = optimizer.param_groups[0]["lr"]

        logits = predict_logits(model, val_images, device, max(settings.batch_size, 256), use_amp)
        preds = logits.argmax(1).numpy()
        y_val = val_labels.numpy()
        val_loss = F.cross_entropy(logits, val_labels).item() if len(val_labels) else float("nan")
        val_acc = float((preds == y_val).mean()) if len(y_val) else float("nan")
        val_f1 = macro_f1(y_val, preds, num_classes) if len(y_val) else float("nan")
        if when == "epoch":
            scheduler.step()
        elif when == "plateau":
            scheduler.step(val_f1)

        record = EpochRecord(epoch, total_loss / max(seen, 1), val_loss, val_acc, val_f1, lr,
                             time.perf_counter() - started)
        records.append(record)
        is_best = val_f1 > best_f1
        if is_best:
            best_f1, since_best = val_f1, 0
        else:
            since_best += 1
        log.info("epoch %d: train_loss %.4f val_loss %.4f val_acc %.4f val_macro_f1 %.4f lr %.2e (%.1fs)%s",
                 epoch, record.train_loss, val_loss, val_acc, val_f1, lr, record.seconds,
                 " best" if is_best else "")
        if on_epoch_end is not None:
            on_epoch_end(record, is_best)
        if settings.early_stopping_patience and since_best >= settings.early_stopping_patience:
            log.info("early stopping: no better val macro-F1 for %d epochs", since_best)
            break
        if resume_path is not None and epoch < settings.epochs:
            if is_best:
                best_epoch, best_state = epoch, _cpu_state(model.state_dict())
            _save_resume_state(resume_path, {
                "format": RESUME_FORMAT,
                "fingerprint": fingerprint,
                "epoch": epoch,
                "model": _cpu_state(model.state_dict()),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "scaler": scaler.state_dict() if use_amp else None,
                "rng": _rng_state(generator, device),
                "best_f1": float(best_f1),
                "since_best": int(since_best),
                "best_epoch": int(best_epoch),
                "best_model": best_state,
                "records": [asdict(r) for r in records],
            })
    if resume_path is not None:
        _clear_resume_state(resume_path)
    return records


def _save_resume_state(path: Path, state: dict[str, Any]) -> None:
    from ferxai.models.checkpoint import save_atomic

    save_atomic(state, path)


def train_experiment(
    train_split: str | Path,
    val_split: str | Path,
    classes: Sequence[str],
    model_settings: Mapping[str, Any],
    train_settings: Mapping[str, Any],
    best_path: str | Path,
    last_path: str | Path,
    log_path: str | Path,
    resume_path: str | Path | None = None,
) -> list[EpochRecord]:
    """Train one experiment from split files; writes best/last checkpoints and the epoch log.

    With `resume_path` (see `fit`), a run that was killed continues from its last finished epoch
    and rewrites the log and both checkpoints as the uninterrupted run would have left them.
    """
    from ferxai.data.dataset import load_split_arrays
    from ferxai.models import build_model, checkpoint_meta, model_normalization, save_checkpoint

    settings = TrainSettings.from_dict(train_settings)
    size, channels = int(model_settings.get("input_size", 48)), int(model_settings.get("channels", 1))
    train_x, train_y, _ = load_split_arrays(train_split, size, channels)
    val_x, val_y, _ = load_split_arrays(val_split, size, channels)
    if len(train_y) == 0:
        raise ValueError(f"{train_split}: the train split is empty")
    if settings.data_parts > 1:
        keep = training_part(train_y, settings.data_part, settings.data_parts)
        train_x, train_y = train_x[keep], train_y[keep]
        log.info("training on part %d of %d of %s: %d images", settings.data_part + 1, settings.data_parts,
                 train_split, len(keep))
    if settings.shuffle_labels:
        true_y, train_y = train_y, shuffled_labels(train_y, settings.seed)
        log.info("training labels shuffled (seed %d): %.1f %% of the images keep their class by chance",
                 settings.seed, 100 * float((train_y == true_y).mean()))

    seed_everything(settings.seed)
    model = build_model(
        model_settings["arch"], num_classes=len(classes), in_channels=channels, input_size=size,
        pretrained=bool(model_settings.get("pretrained", False)), **dict(model_settings.get("options") or {}),
    )
    meta = checkpoint_meta(
        arch=model_settings["arch"], classes=list(classes), in_channels=channels, input_size=size,
        normalization=model_normalization(model), model_options=dict(model_settings.get("options") or {}),
        pretrained=bool(model_settings.get("pretrained", False)),
        config_hash=config_hash({"model": dict(model_settings), "train": dict(train_settings)}),
    )
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_file = open(log_path, "w", buffering=1)

    def epoch_meta(record: EpochRecord) -> dict[str, Any]:
        return {**meta, "epoch": record.epoch, "val_macro_f1": record.val_macro_f1,
                "val_accuracy": record.val_accuracy}

    def persist(record: EpochRecord, is_best: bool) -> None:
        log_file.write(json.dumps(asdict(record)) + "\n")
        save_checkpoint(last_path, model, epoch_meta(record))
        if is_best:
            save_checkpoint(best_path, model, epoch_meta(record))

    def restore(records: list[EpochRecord], best_epoch: int, best_state: dict[str, torch.Tensor] | None) -> None:
        # The outputs of the interrupted job may be gone (Snakemake deletes them): write them anew.
        for record in records:
            log_file.write(json.dumps(asdict(record)) + "\n")
        save_checkpoint(last_path, model, epoch_meta(records[-1]))
        if best_state is not None:
            best_model = copy.deepcopy(model)
            best_model.load_state_dict(best_state)
            save_checkpoint(best_path, best_model, epoch_meta(records[best_epoch - 1]))

    with log_file:
        records = fit(
            model, torch.from_numpy(train_x), torch.from_numpy(train_y),
            torch.from_numpy(val_x), torch.from_numpy(val_y), len(classes), settings, persist,
            resume_path=resume_path, on_resume=restore,
        )
    return records
