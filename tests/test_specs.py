from ferxai import specs
from ferxai.explain.registry import METHODS, get_method
from ferxai.models import ARCHITECTURES, model_options


def test_specs_match_the_code_and_are_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = specs.load_specs()
    assert set(first["methods"]) == set(METHODS)
    assert first["methods"]["integrated_gradients"]["defaults"] == {
        k: list(v) if isinstance(v, tuple) else v for k, v in get_method("integrated_gradients").defaults.items()}
    assert set(first["models"]) == set(ARCHITECTURES)
    assert first["models"]["fer_cnn"]["widths"] == list(model_options("fer_cnn")["widths"])
    cached = list((tmp_path / "ferxai").glob("specs-*.json"))
    assert len(cached) == 1

    def fail():
        raise AssertionError("specs were recomputed although the sources did not change")

    monkeypatch.setattr(specs, "_collect", fail)
    assert specs.load_specs() == first


def test_a_changed_source_gives_a_new_cache_key(tmp_path, monkeypatch):
    pkg = tmp_path / "pkg"
    for rel in specs.SOURCES:
        src = specs.PACKAGE / rel
        dst = pkg / rel
        if src.is_dir():
            dst.mkdir(parents=True)
            (dst / "a.py").write_text("x = 1\n")
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_text("y = 1\n")
    monkeypatch.setattr(specs, "PACKAGE", pkg)
    before = specs._fingerprint()
    (pkg / "explain" / "methods" / "a.py").write_text("x = 2\n")
    assert specs._fingerprint() != before
