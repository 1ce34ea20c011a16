"""Train-split mean images: overall and per class, in [0, 1], NaN for a class without images."""

import numpy as np
import pytest

from ferxai.explain.mean_images import mean_images


def test_mean_images():
    images = np.zeros((4, 1, 2, 2), np.uint8)
    images[0] = 255
    images[1] = 51
    labels = np.array([0, 0, 2, 2])
    mean, class_means = mean_images(images, labels, 4, batch_size=3)
    assert mean.dtype == np.float32 and mean.shape == (1, 2, 2)
    assert np.allclose(mean, (1.0 + 0.2) / 4)
    assert np.allclose(class_means[0], 0.6) and np.allclose(class_means[2], 0.0)
    assert np.isnan(class_means[1]).all() and np.isnan(class_means[3]).all()
    # float input is taken as [0, 1] already
    mean_f, _ = mean_images(images.astype(np.float32) / 255, labels, 4)
    assert np.allclose(mean_f, mean)
    with pytest.raises(ValueError, match="labels"):
        mean_images(images, np.array([0, 0, 5, 1]), 4)
