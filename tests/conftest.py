import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    # Tests share a 2-core machine with whatever else runs; one thread keeps timings predictable.
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)
