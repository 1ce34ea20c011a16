import pytest
import torch

from ferxai.augment import AugmentSettings, augment_batch


def batch(n=6, c=1, size=16):
    return torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(0))


def test_no_augmentation_is_identity():
    s = AugmentSettings(hflip=False, max_shift=0, max_rotation=0, max_scale=0, brightness=0, contrast=0)
    x = batch()
    assert torch.equal(augment_batch(x, s, torch.Generator().manual_seed(1)), x)


def test_flip_only_mirrors_each_image_or_leaves_it():
    s = AugmentSettings(hflip=True, max_shift=0, max_rotation=0, max_scale=0, brightness=0, contrast=0)
    x = batch(n=32)
    y = augment_batch(x, s, torch.Generator().manual_seed(1))
    flipped = [torch.allclose(y[i], x[i].flip(-1), atol=1e-5) for i in range(32)]
    kept = [torch.allclose(y[i], x[i], atol=1e-5) for i in range(32)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 4 < sum(flipped) < 28  # about half


def test_augmentation_is_seeded_in_range_and_shape_preserving():
    s = AugmentSettings()
    x = batch(c=3)
    a = augment_batch(x, s, torch.Generator().manual_seed(5))
    b = augment_batch(x, s, torch.Generator().manual_seed(5))
    c = augment_batch(x, s, torch.Generator().manual_seed(6))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= 0 and a.max() <= 1


def test_unknown_key_is_named():
    with pytest.raises(ValueError, match="max_rotaton"):
        AugmentSettings.from_dict({"max_rotaton": 5})
