"""Pick each method's batch size by measuring it, on the device the job will run on.

Largest is not fastest everywhere: on a 2-core CPU a compact CNN runs forward+backward faster per
image in batches of 8 than of 256 (cache), while a GPU gains until memory runs out. So each
candidate batch size is timed, peak memory is recorded, and the fastest candidate within the
memory budget wins. CUDA out-of-memory marks a candidate as not fitting instead of failing.
"""

from __future__ import annotations

import gc
import logging
import resource
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import torch

from ferxai.device import is_cuda_oom
from ferxai.explain.base import Explainer
from ferxai.explain.shards import shard_runtime_minutes
from ferxai.settings import PreflightSettings

log = logging.getLogger(__name__)


@dataclass
class Candidate:
    batch_size: int
    images_per_call: int
    sec_per_image: float | None
    peak_mb: float | None
    fits: bool
    note: str = ""
    timings: list[float] = field(default_factory=list)  # sec/image of each timed repetition
    timed_seconds: float = 0.0  # wall time of the timed repetitions (no set-up, no warm-up)


@dataclass
class PreflightResult:
    method: str
    device: str
    batch_size: int
    images_per_call: int
    sec_per_image: float
    peak_mb: float | None
    passes_per_image: float
    memory_budget_mb: float
    candidates: list[Candidate] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def runtime_minutes(self, images: int, safety: float = 3.0, minimum: int = 2) -> int:
        """Cluster `runtime` for a job explaining `images` images, with headroom for slower nodes."""
        return shard_runtime_minutes(self.sec_per_image, images, safety, minimum)


def images_per_call(batch_size: int, inputs_per_image: float) -> int:
    """Images handed to one `attribute` call so one call fills about one model batch.

    A method needing many passes per image (IG steps, LIME samples) fills its batches from one
    image; a one-pass method (saliency, Grad-CAM) needs `batch_size` images per call.
    """
    return max(1, batch_size // max(1, int(round(inputs_per_image))))


def _rss_peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / (1024 if sys.platform == "darwin" else 1)


def measure(
    make: Callable[[int], Explainer],
    inputs: torch.Tensor,
    targets: torch.Tensor,
    batch_size: int,
    min_images: int = 2,
    min_seconds: float = 0.5,
    warm_up: bool = True,
    max_images: int | None = None,
) -> tuple[Candidate, Explainer]:
    """Time `attribute` at one batch size; returns the candidate and the explainer measured.

    At least one repetition is timed, more until `min_seconds` have passed. `max_images` caps the
    images per call at what the job will hand the method (a shard smaller than the batch)."""
    device = inputs.device
    explainer = make(batch_size)
    per_call = images_per_call(batch_size, explainer.model_inputs_per_image())
    if max_images is not None:
        per_call = min(per_call, max(1, max_images))
    n = max(min_images, per_call)
    x = inputs[torch.arange(n) % len(inputs)]
    t = targets[torch.arange(n) % len(targets)]
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    else:
        base = _rss_peak_mb()
    # One warm-up call (allocations, library set-up), then repeat until `min_seconds` elapsed.
    # Each repetition is timed on its own and the fastest counts: other processes on the machine
    # only ever slow a repetition down, so the minimum is the least disturbed estimate.
    if warm_up:
        explainer.attribute(x[:per_call], t[:per_call])
    timings: list[float] = []
    start = time.perf_counter()
    while True:
        rep = time.perf_counter()
        for s in range(0, n, per_call):
            explainer.attribute(x[s:s + per_call], t[s:s + per_call])
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        timings.append((time.perf_counter() - rep) / n)
        if time.perf_counter() - start >= min_seconds:
            break
    if device.type == "cuda":
        peak = (torch.cuda.max_memory_allocated(device) - base) / 2**20
    else:
        # ru_maxrss only grows, so with increasing candidates the growth is this candidate's.
        peak = max(0.0, _rss_peak_mb() - base)
    return Candidate(batch_size, per_call, min(timings), peak, True, timings=timings,
                     timed_seconds=time.perf_counter() - start), explainer


def run_preflight(
    make: Callable[[int], Explainer],
    inputs: torch.Tensor,
    targets: torch.Tensor,
    batch_sizes: Sequence[int] = PreflightSettings.batch_sizes,
    memory_budget_mb: float = PreflightSettings.memory_budget_mb,
    min_seconds: float = PreflightSettings.min_seconds,
    patience: int = 2,
    margin: float = 0.10,
    confirm: int = 2,
    confirm_margin: float = 0.25,
    work_images: int | None = None,
    budget_fraction: float = 0.5,
    job_images: int | None = None,
) -> PreflightResult:
    """Measure candidates in increasing order; stop after `patience` candidates clearly slower
    (by more than `margin`) than the best, so timing noise on a busy machine does not end the
    search at a batch size that only looked slower.

    Then the `confirm` fastest candidates within `confirm_margin` of the best are measured once
    more, back to back, and each keeps its fastest timing. A method that takes a second per image
    gets one timed repetition per candidate in the scan, and one disturbed repetition would
    otherwise decide (measured: LIME picked batch 2, 25 % slower than the loop it replaces).

    `work_images`, the images the chosen batch size will explain, sizes the search by the work it
    plans: measuring stops once it has taken `budget_fraction` of the estimated work (images times
    the best time per image so far; the first candidate is always measured). `job_images` (default
    `work_images`), the most images one job hands the method, skips batch sizes whose calls could
    never be filled. None measures every candidate for `min_seconds`."""
    if job_images is None:
        job_images = work_images
    candidates: list[Candidate] = []
    best: Candidate | None = None
    slower = 0
    name, passes = "", 1.0
    # What the search has cost so far, without the first candidate's one-time set-up (importing
    # the method's library, building hooks, the warm-up call), which the job pays anyway.
    spent = 0.0

    def budget_left() -> float:
        if work_images is None:
            return float("inf")
        if best is None:
            return 0.0  # nothing known of the cost yet: the first candidate is timed once
        return budget_fraction * work_images * best.sec_per_image - spent

    for b in sorted(set(int(b) for b in batch_sizes)):
        if best is not None and budget_left() <= 0:
            log.info("batch size %d and up not measured: the preflight budget of %.0f%% of the work is spent",
                     b, 100 * budget_fraction)
            break
        if job_images is not None and candidates and candidates[-1].images_per_call >= job_images:
            break  # the previous candidate already put all of a job's images into one call
        try:
            first = not candidates
            began = time.perf_counter()
            cand, explainer = measure(make, inputs, targets, b, warm_up=first,
                                      min_seconds=min(min_seconds, max(0.0, budget_left())),
                                      max_images=job_images)
            spent += cand.timed_seconds if first else time.perf_counter() - began
            name, passes = explainer.name, explainer.passes_per_image()
            del explainer
        except Exception as exc:  # noqa: BLE001 - only OOM is expected; anything else re-raised
            if not is_cuda_oom(exc):
                raise
            torch.cuda.empty_cache()
            candidates.append(Candidate(b, 0, None, None, False, "CUDA out of memory"))
            log.info("batch size %d: CUDA out of memory, stopping", b)
            break
        finally:
            gc.collect()
        if cand.peak_mb is not None and cand.peak_mb > memory_budget_mb:
            cand.fits, cand.note = False, f"peak {cand.peak_mb:.0f} MB > budget {memory_budget_mb:.0f} MB"
            candidates.append(cand)
            log.info("batch size %d: %s, stopping", b, cand.note)
            break
        candidates.append(cand)
        log.info("batch size %d: %.2f ms/image, peak %.0f MB", b, 1000 * cand.sec_per_image, cand.peak_mb or 0)
        if best is None or cand.sec_per_image < best.sec_per_image:
            best, slower = cand, 0
        elif cand.sec_per_image > best.sec_per_image * (1 + margin):
            slower += 1
            if slower >= patience:
                break
    if best is None:
        raise RuntimeError(f"preflight: no batch size in {list(batch_sizes)} fits in {memory_budget_mb} MB")
    close = sorted((c for c in candidates if c.fits and c.sec_per_image is not None
                    and c.sec_per_image <= best.sec_per_image * (1 + confirm_margin)),
                   key=lambda c: c.sec_per_image)[:confirm]
    if len(close) > 1 and budget_left() > 0:
        for cand in close:
            began = time.perf_counter()
            again, explainer = measure(make, inputs, targets, cand.batch_size, warm_up=False,
                                       min_seconds=min(min_seconds, max(0.0, budget_left())),
                                       max_images=job_images)
            spent += time.perf_counter() - began
            del explainer
            gc.collect()
            cand.timings += again.timings
            cand.sec_per_image = min(cand.timings)
            log.info("batch size %d confirmed: %.2f ms/image", cand.batch_size, 1000 * cand.sec_per_image)
        best = min(close, key=lambda c: c.sec_per_image)
    return PreflightResult(
        method=name, device=str(inputs.device), batch_size=best.batch_size,
        images_per_call=best.images_per_call, sec_per_image=best.sec_per_image, peak_mb=best.peak_mb,
        passes_per_image=passes, memory_budget_mb=memory_budget_mb, candidates=candidates,
    )
