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


def modules_loaded_explaining(methods: dict[str, dict], names: tuple[str, ...]) -> list[str]:
    """Which of `names` a fresh interpreter has imported after explaining two random 16 px images
    with each of `methods` (name -> parameters) on a tiny fer_cnn: what a method's job pays for."""
    import subprocess
    import sys

    code = ("import sys, torch; from ferxai.explain import make_explainer; from ferxai.models.zoo import build_model; "
            "m = build_model('fer_cnn', 7, 1, 16, widths=[4, 8, 8]).eval(); "
            f"[make_explainer(n, m, arch='fer_cnn', **p).attribute(torch.rand(2, 1, 16, 16), torch.tensor([0, 1])) "
            f"for n, p in {methods!r}.items()]; "
            f"print(' '.join(sorted(k for k in {names!r} if k in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return out.split()
