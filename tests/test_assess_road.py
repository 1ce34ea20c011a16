"""Noisy linear imputation, ROAD and infidelity: values known in advance, and cross-checks against
the reference implementations (pytorch-grad-cam's ROAD, captum's infidelity) on the same inputs."""

import numpy as np
import pytest
import torch

from ferxai.assess.imputation import impute
from ferxai.assess.metrics.infidelity import infidelity
from ferxai.assess.metrics.road import road

DIRECT, DIAGONAL = 1 / 6, 1 / 12

# pytorch-grad-cam calls np.float32 on a torch tensor, which numpy 2 warns about; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:__array_wrap__ must accept context:DeprecationWarning")


def _neighbour_mean(image, y, x):
    """Weighted mean of the in-image neighbours of (y, x), by hand (per channel)."""
    _, h, w = image.shape
    total, weights = 0.0, 0.0
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if (dy or dx) and 0 <= y + dy < h and 0 <= x + dx < w:
                weight = DIAGONAL if dy and dx else DIRECT
                total = total + weight * image[:, y + dy, x + dx].astype(np.float64)
                weights += weight
    return total / weights


def _tiny_cnn(classes=3, channels=1):
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(channels, 4, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(4, 4, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(4 * 8 * 8, classes)).eval()


# --- imputation -----------------------------------------------------------------------------------

def test_a_single_removed_interior_pixel_is_the_weighted_mean_of_its_eight_neighbours():
    image = np.random.default_rng(0).random((2, 5, 6))
    removed = np.zeros((5, 6), dtype=bool)
    removed[2, 3] = True
    out = impute(image, removed, noise=0)
    np.testing.assert_allclose(out[:, 2, 3], _neighbour_mean(image, 2, 3), rtol=1e-12)
    # the weights of an interior pixel sum to 1: written out, so the weights themselves are checked
    by_hand = (DIRECT * (image[:, 1, 3] + image[:, 3, 3] + image[:, 2, 2] + image[:, 2, 4])
               + DIAGONAL * (image[:, 1, 2] + image[:, 1, 4] + image[:, 3, 2] + image[:, 3, 4]))
    np.testing.assert_allclose(out[:, 2, 3], by_hand, rtol=1e-12)


def test_a_removed_corner_pixel_leaves_out_the_neighbours_outside_the_image():
    image = np.zeros((1, 3, 3))
    image[0, 0, 1], image[0, 1, 0], image[0, 1, 1] = 6.0, 12.0, 24.0
    removed = np.zeros((3, 3), dtype=bool)
    removed[0, 0] = True
    # (6/6 + 12/6 + 24/12) / (1/6 + 1/6 + 1/12) = 5 / (5/12) = 12
    assert impute(image, removed, noise=0)[0, 0, 0] == pytest.approx(12.0)


def test_a_removed_block_of_a_constant_image_is_that_constant_even_at_the_border():
    image = np.full((3, 8, 8), 0.37)
    removed = np.zeros((8, 8), dtype=bool)
    removed[2:5, 3:6] = True
    removed[0:3, 0:2] = True  # touches a corner: fewer neighbours, same constant
    np.testing.assert_allclose(impute(image, removed, noise=0), 0.37, rtol=1e-12)


def test_a_linear_ramp_is_reproduced_exactly_on_removed_interior_pixels():
    # a*y + b*x + c satisfies "value = mean of its neighbours" for these symmetric weights, and the
    # system has one solution, so imputation must give the ramp back wherever all eight
    # neighbours exist (a removed border pixel would see a lopsided neighbourhood)
    h, w = 10, 12
    ys, xs = np.mgrid[0:h, 0:w]
    image = np.stack([0.3 * ys + 0.05 * xs + 0.1, -0.2 * ys + 0.7 * xs])
    removed = np.zeros((h, w), dtype=bool)
    removed[1:-1, 1:-1] = np.random.default_rng(1).random((h - 2, w - 2)) < 0.6
    removed[3:7, 4:9] = True  # and one solid block, whose inside sees no known pixel at all
    np.testing.assert_allclose(impute(image, removed, noise=0), image, atol=1e-12)


def test_known_pixels_never_change_with_or_without_noise():
    rng = np.random.default_rng(2)
    image = rng.random((3, 9, 7)).astype(np.float32)
    removed = rng.random((9, 7)) < 0.5
    for noise in (0.0, 0.5):
        out = impute(image, removed, noise=noise, rng=np.random.default_rng(0))
        assert out.dtype == np.float32
        assert np.array_equal(out[:, ~removed], image[:, ~removed])
        assert not np.array_equal(out[:, removed], image[:, removed])
    assert np.array_equal(image, impute(image, np.zeros((9, 7), dtype=bool)))  # nothing removed: a copy


def test_noise_free_imputation_is_deterministic_and_seeded_noise_is_reproducible():
    rng = np.random.default_rng(3)
    image = rng.random((1, 32, 32))
    removed = rng.random((32, 32)) < 0.5
    clean = impute(image, removed, noise=0, rng=np.random.default_rng(0))
    assert np.array_equal(clean, impute(image, removed, noise=0, rng=np.random.default_rng(99)))
    assert np.array_equal(clean, impute(image, removed, noise=0))
    noisy = impute(image, removed, noise=0.1, rng=np.random.default_rng(5))
    assert np.array_equal(noisy, impute(image, removed, noise=0.1, rng=np.random.default_rng(5)))
    assert not np.array_equal(noisy, impute(image, removed, noise=0.1, rng=np.random.default_rng(6)))
    # the noise is added after solving (it is not propagated through the system): its standard
    # deviation on the removed pixels is `noise`
    assert np.std((noisy - clean)[0, removed]) == pytest.approx(0.1, rel=0.15)


def test_removing_every_pixel_raises():
    with pytest.raises(ValueError, match="every pixel"):
        impute(np.zeros((1, 4, 4)), np.ones((4, 4), dtype=bool))


def test_a_mask_of_the_wrong_shape_raises_naming_both_shapes():
    with pytest.raises(ValueError, match=r"\(5, 4\).*\(4, 5\)"):
        impute(np.zeros((2, 4, 5)), np.zeros((5, 4), dtype=bool))


def test_imputation_equals_pytorch_grad_cams_noisy_linear_imputer_without_noise():
    from pytorch_grad_cam.metrics.road import NoisyLinearImputer

    rng = np.random.default_rng(4)
    image = rng.random((3, 12, 10)).astype(np.float32)
    removed = rng.random((12, 10)) < 0.45
    removed[0, 0] = removed[-1, -1] = removed[0, 5] = True  # corners and a border pixel too
    ours = impute(image, removed, noise=0)
    # grad-cam's mask marks the pixels it KEEPS
    theirs = NoisyLinearImputer(noise=0)(torch.from_numpy(image), torch.from_numpy((~removed).astype(np.float32)))
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=0, atol=1e-6)


# --- ROAD -----------------------------------------------------------------------------------------

@pytest.fixture
def noise_free_grad_cam_road(monkeypatch):
    """pytorch-grad-cam's own ROADCombined with its imputer's noise set to 0 (ROADCombined builds
    `NoisyLinearImputer()` inside, with its default noise; a subclass keeps the static method
    lookups `NoisyLinearImputer.setup_sparse_system` of the original working)."""
    from pytorch_grad_cam.metrics import road as grad_cam_road
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    class NoiseFree(grad_cam_road.NoisyLinearImputer):
        def __init__(self, noise=0.01, weighting=grad_cam_road.neighbors_weights):
            super().__init__(noise=0.0, weighting=weighting)

    monkeypatch.setattr(grad_cam_road, "NoisyLinearImputer", NoiseFree)

    def score(model, images, maps, targets, percentiles):
        combined = grad_cam_road.ROADCombined(percentiles=list(percentiles))
        return combined(images, maps.numpy(), [ClassifierOutputTarget(int(t)) for t in targets], model)

    return score


# the default percentiles include 20, 40, 60, 80, where the threshold falls exactly on a map value
# for 256 pixels: both must count that pixel as removed (>= threshold)
@pytest.mark.parametrize("channels, percentiles", [(1, (10, 20, 30, 40, 50, 60, 70, 80, 90)), (3, (25, 50, 75))])
def test_road_equals_pytorch_grad_cams_road_combined_without_noise(noise_free_grad_cam_road, channels, percentiles):
    model = _tiny_cnn(channels=channels)
    generator = torch.Generator().manual_seed(0)
    images = torch.rand((3, channels, 16, 16), generator=generator)
    maps = torch.rand((3, 16, 16), generator=generator)  # non-negative (grad-cam takes no |.|), distinct
    targets = torch.tensor([0, 2, 1])
    ours = road(model, images, maps, targets, percentiles=percentiles, noise=0.0)
    theirs = noise_free_grad_cam_road(model, images, maps, targets, percentiles)
    assert np.all(np.abs(theirs) > 1e-4)  # a real comparison, not of zeros
    np.testing.assert_allclose(ours.numpy(), theirs, rtol=0, atol=1e-5)


def _region_model_and_images(n=2, side=16):
    """Logit 0 = sum of the pixels in a central square (a quarter of the image), on images bright
    there and dark elsewhere."""
    region = torch.zeros(side, side, dtype=torch.bool)
    region[4:12, 4:12] = True
    linear = torch.nn.Linear(side * side, 2, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.stack([region.flatten().float(), (~region).flatten().float()]))
    model = torch.nn.Sequential(torch.nn.Flatten(), linear).eval()
    generator = torch.Generator().manual_seed(1)
    images = (0.1 + 0.8 * region.float() + 0.05 * torch.rand((n, 1, side, side), generator=generator))
    return model, images, region, generator


def test_a_map_of_the_region_the_model_reads_scores_higher_than_one_pointing_outside_it():
    model, images, region, generator = _region_model_and_images()
    jitter = 0.01 * torch.rand((2, 16, 16), generator=generator)  # distinct values, ranks kept
    inside = region.float() + jitter
    outside = (~region).float() + jitter
    targets = torch.zeros(2, dtype=torch.long)
    right = road(model, images, inside, targets, noise=0.0)
    wrong = road(model, images, outside, targets, noise=0.0)
    # removing the region first drops the logit (MoRF < 0) while removing the rest leaves it (LeRF
    # ~ 0): positive; the other map the other way round
    assert torch.all(right > 1.0) and torch.all(wrong < -1.0)


def test_road_is_zero_for_a_model_that_ignores_the_image():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(256, 2)).eval()
    with torch.no_grad():
        model[1].weight.zero_()
    images = torch.rand((2, 1, 16, 16))
    maps = torch.rand((2, 16, 16))
    assert torch.equal(road(model, images, maps, torch.tensor([0, 1])), torch.zeros(2))


def test_a_constant_map_gives_nan_for_its_image_only():
    model = _tiny_cnn()
    images = torch.rand((3, 1, 16, 16), generator=torch.Generator().manual_seed(2))
    maps = torch.rand((3, 16, 16), generator=torch.Generator().manual_seed(3))
    maps[1] = 0.5
    maps[2] = 0.0
    scores = road(model, images, maps, torch.tensor([0, 1, 2]), noise=0.0)
    assert torch.isfinite(scores[0]) and torch.isnan(scores[1]) and torch.isnan(scores[2])


def test_road_does_not_depend_on_the_batch_size_and_seeded_noise_is_reproducible():
    model = _tiny_cnn()
    generator = torch.Generator().manual_seed(4)
    images = torch.rand((3, 1, 16, 16), generator=generator)
    maps = torch.rand((3, 16, 16), generator=generator)
    targets = torch.tensor([1, 0, 2])
    one = road(model, images, maps, targets, noise=0.01, seed=7, batch_size=1)
    many = road(model, images, maps, targets, noise=0.01, seed=7, batch_size=64)
    # the noise is seeded per image, not per batch; only float summation order could differ
    torch.testing.assert_close(one, many, rtol=1e-6, atol=1e-7)
    assert torch.equal(many, road(model, images, maps, targets, noise=0.01, seed=7, batch_size=64))
    assert not torch.equal(many, road(model, images, maps, targets, noise=0.01, seed=8, batch_size=64))
    # the map's sign is ignored: relevance is |map|
    assert torch.equal(many, road(model, images, -maps, targets, noise=0.01, seed=7, batch_size=64))


def test_road_maps_of_the_wrong_shape_raise_naming_the_shapes():
    with pytest.raises(ValueError, match=r"\(2, 16, 15\).*\(2, 16, 16\)"):
        road(_tiny_cnn(), torch.rand((2, 1, 16, 16)), torch.rand((2, 16, 15)), torch.tensor([0, 1]))


# --- infidelity -----------------------------------------------------------------------------------

def _linear_model_and_exact_maps(n=4, channels=1, side=8, classes=3):
    """f(x) = W x without bias, every channel of a pixel weighted alike (a (H, W) map stands for all
    channels of its pixel, divided among them), and the maps that are its exact attribution for
    infidelity's perturbation: f(x) - f(x - d) = W d exactly."""
    generator = torch.Generator().manual_seed(5)
    pixel_weights = torch.randn((classes, side, side), generator=generator)
    linear = torch.nn.Linear(channels * side * side, classes, bias=False)
    with torch.no_grad():
        linear.weight.copy_((pixel_weights[:, None].expand(classes, channels, side, side) / channels)
                            .reshape(classes, -1))
    model = torch.nn.Sequential(torch.nn.Flatten(), linear).eval()
    images = torch.rand((n, channels, side, side), generator=generator)
    targets = torch.arange(n) % classes
    return model, images, pixel_weights[targets], targets, generator


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("normalize", [True, False])
def test_the_exact_attribution_of_a_linear_model_has_zero_infidelity_and_a_random_map_does_not(
        channels, normalize):
    model, images, exact, targets, generator = _linear_model_and_exact_maps(channels=channels)
    random = torch.randn(exact.shape, generator=generator)
    exact_score = infidelity(model, images, exact, targets, noise=0.1, samples=16, normalize=normalize)
    random_score = infidelity(model, images, random, targets, noise=0.1, samples=16, normalize=normalize)
    # the scale: E[(W d)^2] = 0.01 * |w|^2, about 0.6 here; what is left of the exact map is rounding
    assert torch.all(exact_score.abs() < 1e-5)
    assert torch.all(random_score > 0.05)


def test_normalize_makes_infidelity_blind_to_the_maps_scale():
    model, images, exact, targets, _ = _linear_model_and_exact_maps()
    assert torch.all(infidelity(model, images, 3 * exact, targets, normalize=True).abs() < 1e-5)
    assert torch.all(infidelity(model, images, 3 * exact, targets, normalize=False) > 0.1)


def test_infidelity_of_a_linear_model_equals_the_formula_with_the_same_noise():
    # for f(x) = W x: infidelity (no normalize) = mean over samples of (d . (map - w))^2, with d
    # image i's noise from a generator seeded by (seed, i)
    model, images, exact, targets, generator = _linear_model_and_exact_maps(n=3)
    maps = torch.randn(exact.shape, generator=generator)
    noise, samples, seed = 0.2, 16, 11
    delta = torch.cat([noise * torch.randn((samples, 1, 8, 8), generator=_image_generator(seed, i)) for i in range(3)])
    error = (delta.view(3, samples, 64) * (maps - exact).view(3, 1, 64)).sum(-1)
    expected = error.pow(2).mean(-1)
    ours = infidelity(model, images, maps, targets, noise=noise, samples=samples, normalize=False, seed=seed,
                      batch_size=samples)  # one image per call: the noise does not depend on it
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-6)


def _image_generator(seed, i):
    """The generator of image i's infidelity noise (ferxai.assess.metrics.infidelity)."""
    return torch.Generator().manual_seed(seed * 1_000_003 + i)


def _captum_infidelity_chunk_by_chunk(model, images, maps, targets, *, noise, samples, normalize, seed, per_call):
    """captum.metrics.infidelity called directly, on `per_call` images at a time, each image's
    noise from its own seeded generator."""
    from captum.metrics import infidelity as captum_infidelity

    first = {"image": 0}

    def perturb(inputs):
        count = len(inputs) // samples
        delta = torch.cat([noise * torch.randn((samples, *inputs.shape[1:]), generator=_image_generator(seed, i))
                           for i in range(first["image"], first["image"] + count)])
        first["image"] += count
        return delta, inputs - delta

    c = images.shape[1]
    attributions = maps[:, None].expand(-1, c, -1, -1) / c
    return torch.cat([captum_infidelity(model, perturb, images[s:s + per_call], attributions[s:s + per_call],
                                        target=targets[s:s + per_call], n_perturb_samples=samples,
                                        normalize=normalize)
                      for s in range(0, len(images), per_call)])


@pytest.mark.parametrize("normalize", [True, False])
def test_infidelity_equals_captums_on_a_small_cnn(normalize):
    model = _tiny_cnn()
    generator = torch.Generator().manual_seed(6)
    images = torch.rand((5, 1, 16, 16), generator=generator)
    maps = torch.rand((5, 16, 16), generator=generator)
    targets = torch.tensor([0, 1, 2, 0, 1])
    settings = dict(noise=0.1, samples=8, normalize=normalize, seed=3)
    ours = infidelity(model, images, maps, targets, batch_size=5 * 8, **settings)
    theirs = _captum_infidelity_chunk_by_chunk(model, images, maps, targets, per_call=5, **settings)
    assert torch.all(theirs > 0)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("samples", [3, 16])
def test_infidelity_does_not_depend_on_the_batch_size(samples):
    # batch_size only sets how many images go to captum per call; each image's noise has its own
    # generator, so the split cannot change it (3 samples of 1x16x16 would, with one generator
    # shared by the calls: torch's CPU randn draws in blocks of 16)
    model = _tiny_cnn()
    generator = torch.Generator().manual_seed(7)
    images = torch.rand((5, 1, 16, 16), generator=generator)
    maps = torch.rand((5, 16, 16), generator=generator)
    targets = torch.tensor([2, 1, 0, 2, 1])
    scores = [infidelity(model, images, maps, targets, samples=samples, seed=1, batch_size=b) for b in (1, 32, 64, 4096)]
    for other in scores[1:]:
        torch.testing.assert_close(other, scores[0], rtol=1e-6, atol=1e-8)
