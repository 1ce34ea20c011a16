"""Supervised training with early stopping on validation macro-F1.

`fit` is the loop (model + tensors in, per-epoch records out, checkpoints written as it goes);
`train_experiment` is what the pipeline calls: split files and settings in, checkpoints and a
JSON-lines log out.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from ferxai.augment import AugmentSettings, augment_batch
from ferxai.config import config_hash
from ferxai.device import autocast_for, make_grad_scaler, resolve_device
from ferxai.metrics import macro_f1

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainSettings:
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
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    augment: AugmentSettings = field(default_factory=AugmentSettings)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "TrainSettings":
        values = dict(values)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"train: unknown key(s) {unknown}; known: {sorted(known)}")
        values["augment"] = AugmentSettings.from_dict(values.get("augment"))
        return cls(**values)


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    val_macro_f1: float
    lr: float
    seconds: float


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
        # Reproducible convolutions on CUDA cost a little speed; results must not depend on the run.
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


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
) -> list[EpochRecord]:
    """Train `model` in place; `on_epoch_end(record, is_best)` persists whatever the caller needs.

    Images are uint8 (N, C, H, W) tensors on the CPU; batches are moved to the device as needed.
    Early stopping watches val macro-F1 (accuracy hides a collapsed minority class).
    """
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
    for epoch in range(1, settings.epochs + 1):
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
    return records


def train_experiment(
    train_split: str | Path,
    val_split: str | Path,
    classes: Sequence[str],
    model_settings: Mapping[str, Any],
    train_settings: Mapping[str, Any],
    best_path: str | Path,
    last_path: str | Path,
    log_path: str | Path,
) -> list[EpochRecord]:
    """Train one experiment from split files; writes best/last checkpoints and the epoch log."""
    from ferxai.data.dataset import load_split_arrays
    from ferxai.models import build_model, checkpoint_meta, model_normalization, save_checkpoint

    settings = TrainSettings.from_dict(train_settings)
    size, channels = int(model_settings.get("input_size", 48)), int(model_settings.get("channels", 1))
    train_x, train_y, _ = load_split_arrays(train_split, size, channels)
    val_x, val_y, _ = load_split_arrays(val_split, size, channels)
    if len(train_y) == 0:
        raise ValueError(f"{train_split}: the train split is empty")

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

    def persist(record: EpochRecord, is_best: bool) -> None:
        log_file.write(json.dumps(asdict(record)) + "\n")
        epoch_meta = {**meta, "epoch": record.epoch, "val_macro_f1": record.val_macro_f1,
                      "val_accuracy": record.val_accuracy}
        save_checkpoint(last_path, model, epoch_meta)
        if is_best:
            save_checkpoint(best_path, model, epoch_meta)

    with log_file:
        records = fit(
            model, torch.from_numpy(train_x), torch.from_numpy(train_y),
            torch.from_numpy(val_x), torch.from_numpy(val_y), len(classes), settings, persist,
        )
    return records
