"""Device selection and mixed-precision helpers, checked with CPU stand-ins (no GPU needed)."""

from __future__ import annotations

import contextlib
import warnings

import pytest
import torch

from ferxai.device import amp_enabled, autocast_for, is_cuda_oom, make_grad_scaler, resolve_device


@pytest.fixture
def fake_cuda(monkeypatch):
    """Pretend two GPUs exist; resolve_device must not touch them to answer."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


def test_cpu_always_resolves(no_cuda):
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device() == torch.device("cpu")


def test_auto_prefers_cuda(fake_cuda):
    dev = resolve_device("auto")
    assert dev.type == "cuda"
    assert resolve_device("cuda").type == "cuda"
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device(" CUDA:0 ") == torch.device("cuda", 0)


def test_missing_cuda_is_an_error_naming_the_spec(no_cuda):
    with pytest.raises(RuntimeError, match=r"'cuda:0'.*CUDA is not available"):
        resolve_device("cuda:0")
    with pytest.raises(RuntimeError, match=r"'cuda'"):
        resolve_device("cuda")


def test_cuda_index_out_of_range(fake_cuda):
    with pytest.raises(RuntimeError, match=r"'cuda:2'.*only 2 CUDA"):
        resolve_device("cuda:2")


@pytest.mark.parametrize("spec", ["gpu", "tpu", "cuda:x", "cuda0", ""])
def test_unknown_spec(spec):
    with pytest.raises(ValueError, match="auto, cpu, cuda, cuda:N"):
        resolve_device(spec)


def test_autocast_is_a_no_op_on_cpu():
    cpu = torch.device("cpu")
    assert not amp_enabled(cpu, True)
    ctx = autocast_for(cpu, enabled=True)
    assert isinstance(ctx, contextlib.nullcontext)
    a = torch.rand(4, 4)
    with ctx:
        assert (a @ a).dtype == torch.float32


def test_autocast_on_cuda_is_float16():
    cuda = torch.device("cuda")
    assert amp_enabled(cuda, True) and not amp_enabled(cuda, False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constructing (not entering) it on a CPU machine warns
        ctx = autocast_for(cuda, enabled=True)
    assert isinstance(ctx, torch.autocast)
    assert ctx.fast_dtype == torch.float16
    assert isinstance(autocast_for(cuda, enabled=False), contextlib.nullcontext)


def test_cpu_grad_scaler_is_a_pass_through():
    scaler = make_grad_scaler(torch.device("cpu"), enabled=True)
    assert not scaler.is_enabled()
    w = torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.SGD([w], lr=0.5)
    loss = (w * 2).sum()
    scaled = scaler.scale(loss)
    assert scaled is loss
    scaled.backward()
    scaler.step(opt)
    scaler.update()
    assert torch.allclose(w.detach(), torch.zeros(2))


def test_cuda_grad_scaler_enabled(fake_cuda):
    # The scaler allocates lazily, so building it with a faked CUDA touches no GPU.
    assert make_grad_scaler(torch.device("cuda"), enabled=True).is_enabled()
    assert not make_grad_scaler(torch.device("cuda"), enabled=False).is_enabled()


@pytest.mark.parametrize("exc,expected", [
    (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
    (RuntimeError("CUDA error: out of memory"), True),
    (RuntimeError("mat1 and mat2 shapes cannot be multiplied"), False),
    (ValueError("out of memory"), False),
    (MemoryError(), False),
])
def test_is_cuda_oom(exc, expected):
    assert is_cuda_oom(exc) is expected
