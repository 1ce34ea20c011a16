"""ferxai.data.images: source references, decoding, pixel-CSV parsing, batch loading."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from ferxai.data.images import (
    decode_image_file,
    load_image,
    load_images,
    npz_images_to_uint8,
    parse_pixel_strings,
    parse_source,
    read_pixel_csv,
    to_chw,
)
from ferxai.data.manifest import ManifestError

RNG = np.random.default_rng(0)


def pixel_string(values: np.ndarray) -> str:
    return " ".join(str(int(v)) for v in np.ravel(values))


def write_pixel_csv(path, images: list[np.ndarray], extra_rows: list[str] = ()) -> None:
    lines = ["emotion,pixels,Usage"]
    lines += [f"0,{pixel_string(img)},Training" for img in images]
    lines += list(extra_rows)
    path.write_text("\n".join(lines) + "\n")


# --------------------------------------------------------------------------- references


def test_parse_source_kinds(tmp_path):
    assert parse_source("a/b.png").kind == "file"
    ref = parse_source("data/fer2013.csv#row=12")
    assert (ref.kind, ref.path, ref.row) == ("csv_row", "data/fer2013.csv", 12)
    ref = parse_source("d/x.npz#train_images[0]")
    assert (ref.kind, ref.path, ref.array, ref.index) == ("npz_item", "d/x.npz", "train_images", 0)
    # A real file whose name looks like a reference is a file.
    odd = tmp_path / "weird#row=3"
    odd.write_bytes(b"x")
    assert parse_source(str(odd)).kind == "file"
    with pytest.raises(ValueError, match="numbered from 1"):
        parse_source("f.csv#row=0")


# --------------------------------------------------------------------------- decoding


def test_decode_gray_rgb_rgba_palette(tmp_path):
    gray = RNG.integers(0, 256, (5, 7), dtype=np.uint8)
    rgb = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    Image.fromarray(gray).save(tmp_path / "g.png")
    Image.fromarray(rgb).save(tmp_path / "c.bmp")
    Image.fromarray(np.dstack([rgb, np.full((5, 7), 9, np.uint8)])).save(tmp_path / "a.png")
    Image.fromarray(gray).convert("P").save(tmp_path / "p.png")
    assert np.array_equal(decode_image_file(tmp_path / "g.png"), gray)
    assert np.array_equal(decode_image_file(tmp_path / "c.bmp"), rgb)
    assert np.array_equal(decode_image_file(tmp_path / "a.png"), rgb)  # alpha dropped
    assert decode_image_file(tmp_path / "p.png").shape == (5, 7)      # gray palette stays gray


def test_decode_failures_name_the_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "junk.jpg").write_bytes(b"not a jpeg at all")
    buf = tmp_path / "full.png"
    Image.fromarray(RNG.integers(0, 256, (64, 64), dtype=np.uint8)).save(buf)
    (tmp_path / "cut.png").write_bytes(buf.read_bytes()[:200])
    with pytest.raises(ValueError, match=r"empty\.png: empty file \(0 bytes\)"):
        decode_image_file(tmp_path / "empty.png")
    with pytest.raises(ValueError, match=r"junk\.jpg: cannot decode image"):
        decode_image_file(tmp_path / "junk.jpg")
    with pytest.raises(ValueError, match=r"cut\.png: cannot decode image"):
        decode_image_file(tmp_path / "cut.png")
    with pytest.raises(FileNotFoundError, match="nope.png"):
        load_image(str(tmp_path / "nope.png"))


# --------------------------------------------------------------------------- pixel CSVs


def test_parse_pixel_strings_reasons():
    good = pixel_string(np.arange(9))
    values = [
        good,
        "1 2 3",
        "1 2 x 4 5 6 7 8 9",
        "1 2 3 4 256 6 7 8 9",
        "",
        "  " + good.replace(" ", "  ") + " ",           # odd spacing is still fine
        "1 2 3 4 5 6 7 8 " + "9" * 40,                  # absurd value must not wrap into range
        "1 2 3 4 -5 6 7 8 9",
        float("nan"),                                   # pandas' missing value
        good.replace(" ", "\t"),                        # tabs: slow path, still accepted
    ]
    pixels, reasons, n = parse_pixel_strings(values)
    assert n == 9
    assert reasons == [
        "",
        "expected 9 pixel values, found 3",
        "pixel 3 is 'x', not an integer",
        "pixel 5 value 256 is outside 0-255",
        "pixels field is empty",
        "",
        f"pixel 9 value {'9' * 40} is outside 0-255",
        "pixel 5 value -5 is outside 0-255",
        "pixels field is empty",
        "",
    ]
    for k in (0, 5, 9):
        assert np.array_equal(pixels[k], np.arange(9))
    assert not pixels[1:5].any()


def test_pixel_csv_rows_and_cache(tmp_path):
    imgs = [RNG.integers(0, 256, (4, 4), dtype=np.uint8) for _ in range(3)]
    path = tmp_path / "px.csv"
    write_pixel_csv(path, imgs, extra_rows=["0,1 2 3,Training"])
    table = read_pixel_csv(path)
    assert table.side == 4 and list(table.columns.columns) == ["emotion", "Usage"]
    assert read_pixel_csv(path) is table  # cached
    for n, img in enumerate(imgs, start=1):
        assert np.array_equal(load_image(f"{path}#row={n}"), img)
    load_image(f"{path}#row=1")[:] = 0  # callers get copies, never the cached table itself
    assert np.array_equal(load_image(f"{path}#row=1"), imgs[0])
    with pytest.raises(ValueError, match=r"#row=4: expected 16 pixel values, found 3"):
        load_image(f"{path}#row=4")
    with pytest.raises(ValueError, match="only 4 data rows"):
        load_image(f"{path}#row=5")
    # A rewritten file (new mtime) is parsed again.
    write_pixel_csv(path, imgs[::-1])
    os.utime(path, ns=(1, 1))
    assert np.array_equal(load_image(f"{path}#row=1"), imgs[2])


def test_pixel_csv_without_pixels_column(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ManifestError, match=r"p\.csv: no 'pixels' column"):
        read_pixel_csv(path)


# --------------------------------------------------------------------------- npz


def test_npz_items_and_conversion(tmp_path):
    floats = RNG.random((3, 5, 5, 1)).astype(np.float32)
    np.savez(tmp_path / "d.npz", train_images=floats, val_images=np.arange(50).reshape(2, 5, 5))
    got = load_image(f"{tmp_path / 'd.npz'}#train_images[2]")
    assert got.dtype == np.uint8 and got.shape == (5, 5)
    assert np.array_equal(got, np.rint(floats[2, ..., 0] * 255).astype(np.uint8))
    assert load_image(f"{tmp_path / 'd.npz'}#val_images[1]")[0, 0] == 25
    with pytest.raises(ValueError, match=r"has only 3 items"):
        load_image(f"{tmp_path / 'd.npz'}#train_images[3]")
    with pytest.raises(ManifestError, match=r"no array 'test_images'"):
        load_image(f"{tmp_path / 'd.npz'}#test_images[0]")
    with pytest.raises(ManifestError, match="neither 0-255 integers nor 0-1 floats"):
        npz_images_to_uint8(np.full((1, 2, 2), 300), "x.npz array 'a'")


# --------------------------------------------------------------------------- batch loading


def test_to_chw_channels_and_resize():
    rgb = RNG.integers(0, 256, (10, 10, 3), dtype=np.uint8)
    gray = to_chw(rgb, 10, 1)
    assert gray.shape == (1, 10, 10)
    assert np.array_equal(gray[0], np.asarray(Image.fromarray(rgb).convert("L")))  # ITU-R 601 luma
    rep = to_chw(rgb[..., 0], 6, 3)
    assert rep.shape == (3, 6, 6) and (rep[0] == rep[1]).all() and (rep[1] == rep[2]).all()
    flat = to_chw(np.full((40, 30), 77, np.uint8), 8, 1)
    assert flat.shape == (1, 8, 8) and (flat == 77).all()  # stretched to square, values preserved
    with pytest.raises(ValueError, match="channels must be 1 or 3"):
        to_chw(rgb, 8, 2)


def test_load_images_mixed_sources_keep_order(tmp_path):
    imgs = [RNG.integers(0, 256, (4, 4), dtype=np.uint8) for _ in range(3)]
    csv_path = tmp_path / "px.csv"
    write_pixel_csv(csv_path, imgs)
    rgb = RNG.integers(0, 256, (2, 4, 4, 3), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", train_images=rgb)
    Image.fromarray(imgs[0]).save(tmp_path / "f.png")
    sources = [f"{csv_path}#row=3", str(tmp_path / "f.png"), f"{tmp_path / 'd.npz'}#train_images[1]",
               f"{csv_path}#row=1"]
    out = load_images(sources, 4, 3)
    assert out.shape == (4, 3, 4, 4) and out.dtype == np.uint8
    assert np.array_equal(out[0, 2], imgs[2]) and np.array_equal(out[3, 1], imgs[0])
    assert np.array_equal(out[1, 0], imgs[0])
    assert np.array_equal(out[2], rgb[1].transpose(2, 0, 1))
    gray = load_images(sources, 8, 1)
    assert gray.shape == (4, 1, 8, 8)
    assert load_images([], 8, 1).shape == (0, 1, 8, 8)
    with pytest.raises(ValueError, match=r"#row=9: .*only 3 data rows"):
        load_images([f"{csv_path}#row=9"], 4, 1)
