import numpy as np
import pytest
import torch

from ferxai.explain.noise import Condition, ConditionError, apply_noise, parse_condition


def _images(n=6, c=1, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, size, size, generator=g)


@pytest.mark.parametrize("name, kind, level", [
    ("clean", "clean", 0.0),
    ("gaussian-0.1", "gaussian", 0.1),
    ("saltpepper-0.05", "saltpepper", 0.05),
    ("speckle-0.2", "speckle", 0.2),
    ("gaussian-1", "gaussian", 1.0),
])
def test_parse_condition(name, kind, level):
    cond = parse_condition(name)
    assert cond == Condition(kind, level)
    assert parse_condition(cond.name) == cond
    assert cond.name == name


@pytest.mark.parametrize("name, match", [
    ("gauss-0.1", "unknown noise kind 'gauss'"),
    ("gaussian", "needs a level"),
    ("gaussian-", "needs a level"),
    ("clean-0.1", "takes no level"),
    ("gaussian-1.5", "outside"),
    ("speckle-0.1.2", "plain decimal"),
    ("saltpepper-x", "plain decimal"),
])
def test_parse_condition_errors(name, match):
    with pytest.raises(ConditionError, match=match) as info:
        parse_condition(name)
    assert repr(name) in str(info.value) and "gaussian-0.1" in str(info.value)


def test_clean_is_identity():
    x = _images()
    assert apply_noise(x, "clean", seed=0) is x


@pytest.mark.parametrize("cond", ["gaussian-0.2", "saltpepper-0.1", "speckle-0.3"])
def test_deterministic_in_range_and_sharding_invariant(cond):
    x = _images(n=7, c=3, size=16)
    full = apply_noise(x, cond, seed=5)
    assert full.shape == x.shape and full.dtype == x.dtype
    assert float(full.min()) >= 0.0 and float(full.max()) <= 1.0
    assert not torch.equal(full, x)
    assert torch.equal(full, apply_noise(x, cond, seed=5))
    assert not torch.equal(full, apply_noise(x, cond, seed=6))
    # Shards of 3: same noise per image as in one batch.
    parts = [apply_noise(x[s:s + 3], cond, seed=5, start=s) for s in range(0, 7, 3)]
    assert torch.equal(torch.cat(parts), full)
    # Explicit indices: an image alone gets the noise of its index.
    assert torch.equal(apply_noise(x[4:5], cond, seed=5, indices=[4]), full[4:5])
    # Identical images at different indices get different noise.
    same = x[:1].repeat(2, 1, 1, 1)
    noisy = apply_noise(same, cond, seed=5)
    assert not torch.equal(noisy[0], noisy[1])


def test_gaussian_statistics():
    x = torch.full((4, 1, 64, 64), 0.5)
    sigma = 0.1
    delta = apply_noise(x, f"gaussian-{sigma}", seed=1) - x
    assert abs(float(delta.mean())) < 0.005
    assert float(delta.std()) == pytest.approx(sigma, rel=0.05)


def test_saltpepper_statistics():
    x = torch.full((4, 3, 64, 64), 0.5)
    amount = 0.05
    out = apply_noise(x, f"saltpepper-{amount}", seed=1)
    changed = (out != 0.5)
    # a pixel is corrupted in all channels together
    assert torch.equal(changed.all(1), changed.any(1))
    frac = float(changed[:, 0].float().mean())
    assert frac == pytest.approx(amount, rel=0.15)
    values = out[changed]
    assert set(values.unique().tolist()) == {0.0, 1.0}
    assert float((values == 1.0).float().mean()) == pytest.approx(0.5, abs=0.1)
    # common random numbers: the pixels hit at a lower amount are hit at a higher one too
    more = apply_noise(x, "saltpepper-0.2", seed=1)
    assert bool(((more != 0.5) | ~changed).all())


def test_speckle_is_multiplicative():
    x = torch.zeros(2, 1, 32, 32)
    x[:, :, :16] = 0.5
    out = apply_noise(x, "speckle-0.2", seed=3)
    assert torch.equal(out[:, :, 16:], x[:, :, 16:])  # black stays black
    delta = (out - x)[:, :, :16]
    assert float(delta.std()) == pytest.approx(0.5 * 0.2, rel=0.1)


def test_levels_share_the_draw():
    x = torch.full((1, 1, 16, 16), 0.5)
    d1 = apply_noise(x, "gaussian-0.01", seed=2) - x
    d2 = apply_noise(x, "gaussian-0.02", seed=2) - x
    assert torch.allclose(d2, 2 * d1, atol=1e-6)


def test_apply_noise_input_errors():
    with pytest.raises(ValueError, match="float"):
        apply_noise(torch.zeros(1, 1, 4, 4, dtype=torch.uint8), "gaussian-0.1", seed=0)
    with pytest.raises(ValueError, match="N, C, H, W"):
        apply_noise(torch.zeros(1, 4, 4), "gaussian-0.1", seed=0)
    with pytest.raises(ValueError, match="2 images but 1 indices"):
        apply_noise(torch.zeros(2, 1, 4, 4), "gaussian-0.1", seed=0, indices=[3])
    with pytest.raises(ConditionError):
        apply_noise(torch.zeros(2, 1, 4, 4), "blur-0.1", seed=0)
    assert apply_noise(torch.zeros(0, 1, 4, 4), "gaussian-0.1", seed=0).shape == (0, 1, 4, 4)
    assert np.isclose(float(apply_noise(torch.zeros(1, 1, 4, 4, dtype=torch.float64),
                                        "gaussian-0", seed=0).abs().max()), 0.0)
