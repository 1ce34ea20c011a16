"""What each dataset format's adapter accepts: one description, read by the config check and by
the adapters themselves, so the two cannot drift apart.

The config check runs on every ``snakemake`` call (dry runs included) before any job, so this
module imports nothing beyond the standard library: no pandas, PIL, numpy or adapter module.
Everything the config alone shows is checked here (names, required options, value types, choices,
regexes); what needs the data (a file exists, a class list fits the labels) is left to the
adapters and the workflow.

``tests/test_options.py`` checks that every adapter's signature matches its entry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# CK+ file names are <subject>_<sequence>_<frame>, e.g. S005_001_00000011.png -> subject S005.
CKPLUS_SUBJECT_PATTERN = r"(?:^|/)(?P<subject>S\d{3})_\d{3}_\d+\.[^/]*$"

# Value kinds. "file" and "dir" are paths the adapter reads: the workflow makes every one of them
# an input of the manifest rule or part of its fingerprint, so a change to them reruns it.
# "column" is the name of a column of the dataset's own table (a non-empty string).
FILE, DIR, CLASSES, CHOICE, REGEX, COLUMN = "file", "dir", "classes", "choice", "regex", "column"


class OptionError(ValueError):
    """A bad adapter option. ``key``: the option at fault (None for unknown names); ``value``: True
    when its value is bad (the message then does not name the format, the caller does)."""

    def __init__(self, message: str, key: str | None = None, value: bool = False) -> None:
        super().__init__(message)
        self.key = key
        self.value = value


@dataclass(frozen=True)
class Option:
    name: str
    kind: str
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()
    # "regex" options: the named group the pattern must have.
    group: str = ""


_CLASSES = Option("classes", CLASSES)
# Ground-truth masks (see ferxai.data.adapters.masks): a folder mirroring the image folder, or a
# column of mask paths.
_MASKS = Option("masks", DIR)

FORMATS: dict[str, tuple[Option, ...]] = {
    # The workflow passes the generated folder; the user's options go to the generator
    # (ferxai.data.synthetic.SyntheticConfig), which checks them itself.
    "synthetic": (Option("root", DIR, required=True),),
    "folder": (Option("root", DIR, required=True), _CLASSES,
               Option("subject_pattern", REGEX, default=CKPLUS_SUBJECT_PATTERN, group="subject"), _MASKS),
    "images": (Option("root", DIR, required=True), Option("classes", CLASSES, required=True), _MASKS),
    "fer2013_csv": (Option("path", FILE, required=True),),
    "ferplus": (Option("fer2013_csv", FILE, required=True), Option("ferplus_csv", FILE, required=True),
                Option("label_mode", CHOICE, default="majority", choices=("majority", "plurality", "drop_ties"))),
    "npz": (Option("path", FILE, required=True), _CLASSES),
    "csv": (Option("path", FILE, required=True), _CLASSES, Option("mask_column", COLUMN)),
}

# The option that gives a format's images ground-truth masks; synthetic datasets always have them.
MASK_OPTIONS: dict[str, str] = {"folder": "masks", "images": "masks", "csv": "mask_column"}


# Each format's adapter function, imported only when a manifest of that format is built.
ADAPTERS: dict[str, str] = {
    "synthetic": "ferxai.data.adapters.synthetic:read_synthetic",
    "folder": "ferxai.data.adapters.folder:read_folder",
    "images": "ferxai.data.adapters.images:read_images",
    "fer2013_csv": "ferxai.data.adapters.fer2013_csv:read_fer2013_csv",
    "ferplus": "ferxai.data.adapters.ferplus:read_ferplus",
    "npz": "ferxai.data.adapters.npz:read_npz",
    "csv": "ferxai.data.adapters.csv_manifest:read_csv",
}


def format_options(fmt: str) -> tuple[Option, ...]:
    """The options of ``fmt``; OptionError naming the known formats for an unknown one."""
    if fmt not in FORMATS:
        raise OptionError(f"unknown dataset format {fmt!r}; known formats: {', '.join(sorted(FORMATS))}")
    return FORMATS[fmt]


def option(fmt: str, name: str) -> Option:
    for opt in format_options(fmt):
        if opt.name == name:
            return opt
    raise KeyError(f"format {fmt!r} has no option {name!r}")


def path_options(fmt: str, kind: str) -> list[str]:
    """Names of ``fmt``'s options of path kind ``kind`` ("file" or "dir")."""
    return [opt.name for opt in format_options(fmt) if opt.kind == kind]


def provides_masks(fmt: str, options: Mapping[str, Any] | None) -> bool:
    """Whether a dataset of format ``fmt`` with adapter ``options`` can have ground-truth masks,
    from the config alone: synthetic always; folder and images with ``masks``; csv with
    ``mask_column``; other formats never. Reads no file: which images do have a mask is known only
    once the manifest is built (a mask may be missing for some images).
    """
    if fmt == "synthetic":
        return True
    value = (options or {}).get(MASK_OPTIONS.get(fmt, ""))
    return isinstance(value, str) and bool(value.strip())


def check_options(fmt: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """``options`` checked against ``fmt``'s description, as the adapter's keyword arguments.

    OptionError names unknown or missing options with the valid names, or the first option whose
    value is of the wrong type, not among its choices, or not a usable regex.
    """
    described = format_options(fmt)
    options = dict(options or {})
    names = [opt.name for opt in described]
    unknown = sorted(set(options) - set(names))
    if unknown:
        raise OptionError(f"dataset format {fmt!r}: unknown option(s) {unknown}; valid options: {', '.join(names)}")
    missing = [opt.name for opt in described if opt.required and opt.name not in options]
    if missing:
        raise OptionError(f"dataset format {fmt!r}: missing required option(s) {missing}", key=missing[0])
    return {opt.name: check_value(opt, options[opt.name]) for opt in described if opt.name in options}


def check_value(opt: Option, value: Any) -> Any:
    """``value`` as the adapter takes it (class names as strings), or OptionError naming ``opt``."""
    what = f"option {opt.name!r}"
    if value is None and not opt.required and opt.kind != CHOICE:
        return None
    if opt.kind in (FILE, DIR):
        if not isinstance(value, str) or not value.strip():
            noun = "a file path" if opt.kind == FILE else "a folder path"
            raise OptionError(f"{what} must be {noun} (a non-empty string), got {value!r}", key=opt.name, value=True)
        return value
    if opt.kind == COLUMN:
        if not isinstance(value, str) or not value.strip():
            raise OptionError(f"{what} must be a column name (a non-empty string), got {value!r}",
                              key=opt.name, value=True)
        return value.strip()
    if opt.kind == CLASSES:
        return class_names(value, what, opt.name)
    if opt.kind == CHOICE:
        if value not in opt.choices:
            raise OptionError(f"{what} must be one of {list(opt.choices)}, got {value!r}", key=opt.name, value=True)
        return value
    if opt.kind == REGEX:
        compile_regex(value, opt)
        return value
    raise AssertionError(f"option kind {opt.kind!r} of {opt.name!r} is not handled")


def class_names(value: Any, what: str = "option 'classes'", key: str = "classes") -> list[str]:
    """A class list as distinct, non-empty names; numbers are accepted as names ("0", "1", ...)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise OptionError(f"{what} must be a list of names, got {value!r}", key=key, value=True)
    bad = [v for v in value if isinstance(v, bool) or not isinstance(v, (str, int))]
    if bad:
        raise OptionError(f"{what} must list names (strings), got {bad[0]!r} in {list(value)}", key=key, value=True)
    names = [str(v) for v in value]
    if not names or any(not name.strip() for name in names) or len(set(names)) != len(names):
        raise OptionError(f"{what} must be distinct, non-empty names, got {names}", key=key, value=True)
    return names


def compile_regex(value: Any, opt: Option) -> re.Pattern[str] | None:
    """The compiled pattern of a regex option ("" and None: no pattern), or OptionError."""
    if value is None or value == "":
        return None
    what = f"option {opt.name!r}"
    if not isinstance(value, str):
        raise OptionError(f"{what} must be a regex (a string), got {value!r}", key=opt.name, value=True)
    try:
        pattern = re.compile(value)
    except re.error as err:
        raise OptionError(f"{what} {value!r} is not a regex: {err}", key=opt.name, value=True) from None
    if opt.group and opt.group not in pattern.groupindex:
        raise OptionError(f"{what} {value!r} has no (?P<{opt.group}>...) group", key=opt.name, value=True)
    return pattern


__all__ = ["CKPLUS_SUBJECT_PATTERN", "FORMATS", "MASK_OPTIONS", "Option", "OptionError", "check_options",
           "check_value", "class_names", "compile_regex", "format_options", "option", "path_options",
           "provides_masks"]
