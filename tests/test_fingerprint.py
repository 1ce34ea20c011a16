"""What the manifest rule depends on: input files of path options, fingerprints of the rest."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from ferxai.data.fingerprint import input_files, listed_files_fingerprint, source_fingerprint
from ferxai.data.options import FORMATS, OptionError


def png(path, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (6, 6), dtype=np.uint8)).save(path)


def test_csv_fingerprint_follows_the_listed_images(tmp_path):
    meta = tmp_path / "meta"
    png(meta / "imgs" / "a.png")
    fer = tmp_path / "fer2013.csv"
    fer.write_text("emotion,pixels\n0," + " ".join(["7"] * 2304) + "\n")
    listing = meta / "labels.csv"
    listing.write_text(f"label,path\nhappy,imgs/a.png\nsad,imgs/b.png\nsad,../{fer.name}#row=1\nsad,\n")
    first = listed_files_fingerprint(listing)
    assert first == listed_files_fingerprint(listing) and len(first) == 16
    png(meta / "imgs" / "b.png", seed=1)  # the missing image is added
    added = listed_files_fingerprint(listing)
    assert added != first
    os.utime(meta / "imgs" / "a.png", ns=(1, 1))  # an image is replaced
    assert listed_files_fingerprint(listing) != added
    touched = listed_files_fingerprint(listing)
    fer.write_text(fer.read_text() + "1," + " ".join(["9"] * 2304) + "\n")  # the referenced container changes
    assert listed_files_fingerprint(listing) != touched
    assert source_fingerprint("csv", {"path": str(listing)}) == f"listed={listed_files_fingerprint(listing)}"
    assert listed_files_fingerprint(tmp_path / "absent.csv") == ""
    (tmp_path / "nopath.csv").write_text("file,label\na.png,x\n")
    assert listed_files_fingerprint(tmp_path / "nopath.csv") == ""


def test_folder_options_are_fingerprinted_file_options_are_not(tmp_path):
    png(tmp_path / "ds" / "happy" / "a.png")
    before = source_fingerprint("folder", {"root": str(tmp_path / "ds")})
    png(tmp_path / "ds" / "sad" / "b.png")
    assert source_fingerprint("folder", {"root": str(tmp_path / "ds")}) != before
    assert source_fingerprint("npz", {"path": str(tmp_path / "x.npz")}) == ""


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_path_option_is_an_input_or_fingerprinted(tmp_path, fmt):
    """Whatever format gains a path option, the manifest rule sees a change to it."""
    options = {}
    for opt in FORMATS[fmt]:
        if opt.kind == "file":
            options[opt.name] = str(tmp_path / f"{opt.name}.csv")
            (tmp_path / f"{opt.name}.csv").write_text("path,label\n")
        elif opt.kind == "dir":
            options[opt.name] = str(tmp_path / opt.name)
            png(tmp_path / opt.name / "happy" / "a.png")
    inputs, fingerprint = input_files(fmt, options), source_fingerprint(fmt, options)
    for name, value in options.items():
        assert inputs.get(name) == value or f"{name}=" in fingerprint, name
    assert options, "every format reads some path"


def test_path_options_that_name_nothing_are_errors_naming_the_option(tmp_path):
    fer = tmp_path / "fer2013.csv"
    fer.write_text("emotion,pixels\n")
    assert input_files("ferplus", {"fer2013_csv": str(fer), "ferplus_csv": str(fer)}) == {
        "fer2013_csv": str(fer), "ferplus_csv": str(fer)}
    with pytest.raises(OptionError, match=rf"file {tmp_path / 'fer2013new.csv'} does not exist") as info:
        input_files("ferplus", {"fer2013_csv": str(fer), "ferplus_csv": str(tmp_path / "fer2013new.csv")})
    assert info.value.key == "ferplus_csv"
    with pytest.raises(OptionError, match=r"folder .*ckplus does not exist") as info:
        input_files("folder", {"root": str(tmp_path / "ckplus")})
    assert info.value.key == "root"
    assert input_files("folder", {"root": str(tmp_path)}) == {}
