"""One metric of several experiments side by side (ferxai.assess.compare), on per-image files."""

import numpy as np

from ferxai.assess.compare import compare, main, markdown, separated
from ferxai.assess.files import per_image_file, write_per_image
from ferxai.assess.intervals import Estimate


def scores(root, method, values):
    ids = [f"img{i}" for i in range(len(values))]
    write_per_image(per_image_file(str(root), "clean", method, "relevance_mass"), ids, ["test"] * len(ids), values)


def test_side_by_side_means_intervals_and_separation(tmp_path, capsys):
    shortcut, clean = tmp_path / "results" / "shortcut" / "assess", tmp_path / "results" / "clean" / "assess"
    rng = np.random.default_rng(0)
    scores(shortcut, "gradcam", 0.6 + 0.05 * rng.standard_normal(40))
    scores(clean, "gradcam", 0.1 + 0.05 * rng.standard_normal(40))
    scores(shortcut, "saliency", 0.3 + 0.05 * rng.standard_normal(40))
    scores(clean, "saliency", 0.3 + 0.05 * rng.standard_normal(40))
    scores(shortcut, "only_here", [0.5, np.nan, 0.7])
    table = compare([shortcut, clean], "relevance_mass")
    assert list(table) == ["gradcam", "only_here", "saliency"]
    assert table["only_here"][1] is None and table["only_here"][0].n == 2
    assert abs(table["only_here"][0].mean - 0.6) < 1e-12
    assert separated(*table["gradcam"]) == "higher" and separated(*table["saliency"]) == "overlap"
    text = markdown(table, ["shortcut", "clean"], "relevance_mass")
    assert text.splitlines()[0] == "| method | shortcut: relevance_mass | clean: relevance_mass | first vs second |"
    assert text.splitlines()[2].startswith("| gradcam | 0.5") and text.splitlines()[2].endswith("| higher |")
    assert main(["--results", str(tmp_path / "results"), "--metric", "relevance_mass", "shortcut", "clean"]) == 0
    assert capsys.readouterr().out == text


def test_separation_needs_both_intervals():
    a, b = Estimate(0.5, 0.4, 0.6, 10), Estimate(0.1, 0.0, 0.2, 10)
    assert separated(a, b) == "higher" and separated(b, a) == "lower" and separated(a, None) == ""
