"""What code a workflow job runs, as a short fingerprint Snakemake can record as a param.

Snakemake reruns a job when its rule's script changes, not when the library code behind the
script does, nor when a backing library is upgraded. So each rule gets a ``code`` param: a hash of
the source of every ``ferxai`` module its script (and, for explanation jobs, its method's module)
imports, directly or through other ``ferxai`` modules, plus the installed versions of the
third-party packages those modules import. Editing ``methods/gradcam.py`` then changes the
fingerprint of GradCAM's jobs only; editing ``train.py`` that of training (and the jobs after it
rerun because their inputs do).

Everything is read statically (``ast``), so computing a fingerprint imports nothing: it runs in
the Snakemake process on every invocation, dry runs included. Imports inside functions count (they
run when the job runs); imports under ``if TYPE_CHECKING:`` do not, except in a package's
``__init__`` (see `_imports`). Modules loaded by name (a method through the catalog, an adapter, an
architecture's implementation) are not seen; the workflow adds them to the entries itself.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import os
import sys
from collections.abc import Iterable
from functools import lru_cache
from importlib import metadata
from pathlib import Path

PACKAGE = "ferxai"
SOURCE_ROOT = Path(__file__).resolve().parent.parent  # the folder that holds ferxai/

# Import names whose distribution is named differently (importlib.metadata.packages_distributions
# would find these too, but it reads every installed distribution's file list on each call).
DISTRIBUTION_OF: dict[str, str] = {
    "PIL": "pillow",
    "cv2": "opencv-python-headless",
    "pytorch_grad_cam": "grad-cam",
    "skimage": "scikit-image",
    "sklearn": "scikit-learn",
    "yaml": "PyYAML",
}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, is_package: bool) -> Iterable[str]:
    """Absolute names of what `module`'s source imports (``from a import b`` yields a.b and a).

    Imports under ``if TYPE_CHECKING:`` are skipped, except in a package's ``__init__``: a package
    that hands names on lazily (a module ``__getattr__``) names their modules there, and
    ``from pkg import name`` runs that module."""
    todo = list(_statements(tree))
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test) and not is_package:
            todo.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")
                anchor = parts if is_package else parts[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
        todo.extend(_statements(node))


# Fields of a node that hold statements (an import is a statement, so expressions, which are most
# of a module's nodes, never need walking).
_STATEMENT_FIELDS = ("body", "orelse", "finalbody", "handlers", "cases")


def _statements(node: ast.AST) -> Iterable[ast.AST]:
    for name in _STATEMENT_FIELDS:
        children = getattr(node, name, None)
        if isinstance(children, list):
            yield from children


@lru_cache(maxsize=None)
def _module_file(module: str, root: Path) -> Path | None:
    path = root.joinpath(*module.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


# Parsing every module's source is most of what fingerprinting costs, and every snakemake command
# fingerprints every job. So the workflow keeps what each source imports in a folder of its own
# (`code_fingerprint(..., cache=...)`), under a hash of the source, the module's name and this
# format: an entry can only ever describe the text it was made from, so none goes stale.
_CACHE_FORMAT = "ferxai-imports 1"


def _entry_key(source: bytes, module: str, is_package: bool) -> str:
    digest = hashlib.sha256(f"{_CACHE_FORMAT}\0{module}\0{int(is_package)}\0".encode())
    digest.update(source)
    return digest.hexdigest()


def _read_entry(entry: Path) -> tuple[str, ...] | None:
    """The names an entry holds, or None if it is missing or incomplete (a write cut short)."""
    try:
        lines = entry.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError):
        return None
    if len(lines) < 2 or lines[0] != _CACHE_FORMAT or lines[-1] != "end":
        return None
    return tuple(lines[1:-1])


def _write_entry(entry: Path, names: tuple[str, ...]) -> None:
    """Best effort: a folder that cannot be written only costs the next command a parse."""
    tmp = entry.with_name(f".{entry.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text("\n".join([_CACHE_FORMAT, *names, "end"]), encoding="utf-8")
        os.replace(tmp, entry)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


@lru_cache(maxsize=None)
def _parsed(path: Path, mtime_ns: int, size: int, module: str, is_package: bool, cache: Path | None = None
            ) -> tuple[bytes, tuple[str, ...]]:
    source = path.read_bytes()
    entry = cache / _entry_key(source, module, is_package) if cache is not None else None
    names = _read_entry(entry) if entry is not None else None
    if names is None:
        names = tuple(sorted(set(_imports(ast.parse(source, filename=str(path)), module, is_package))))
        if entry is not None:
            _write_entry(entry, names)
    return source, names


@lru_cache(maxsize=None)
def _module_name(path: Path, root: Path) -> tuple[str, bool]:
    is_package = path.name == "__init__.py"
    if not path.is_relative_to(root):  # a workflow script is not a module: no relative imports
        return "", is_package
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if is_package else parts), is_package


@lru_cache(maxsize=None)
def _label(path: Path, root: Path) -> bytes:
    """What names a file in the hash: its path under `root` (a workflow script: its name)."""
    rel = path.relative_to(root) if path.is_relative_to(root) else Path(path.name)
    return f"{rel}\0".encode()


def _read(path: Path, root: Path, cache: Path | None = None) -> tuple[bytes, tuple[str, ...]]:
    """(source, imported names) of one file, parsed once per content (mtime and size)."""
    st = os.stat(path)
    return _parsed(path, st.st_mtime_ns, st.st_size, *_module_name(path, root), cache)


@lru_cache(maxsize=None)
def _edges_of(path: Path, mtime_ns: int, size: int, root: Path, cache: Path | None = None
              ) -> tuple[tuple[tuple[str, Path], ...], frozenset[str]]:
    """(((ferxai module, file) ...), third-party top-level names) one file imports directly.

    Importing ``a.b.c`` runs ``a/__init__``, ``a/b/__init__`` and ``a/b/c``, so parents count too."""
    modules: dict[str, Path] = {}
    external: set[str] = set()
    for name in _parsed(path, mtime_ns, size, *_module_name(path, root), cache)[1]:
        top = name.split(".")[0]
        if top != PACKAGE:
            if top and top not in sys.stdlib_module_names:
                external.add(top)
            continue
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):
            sub = ".".join(parts[:depth])
            if sub not in modules:
                found = _module_file(sub, root)
                if found is not None:  # `from pkg import name` also yields pkg.name, maybe not a module
                    modules[sub] = found
    return tuple(modules.items()), frozenset(external)


def module_closure(entry_files: Iterable[str | Path], root: Path = SOURCE_ROOT, cache: Path | None = None
                   ) -> tuple[dict[str, Path], set[str]]:
    """({ferxai module: file} reached from `entry_files`, {third-party top-level import names}).
    `cache`: the folder of parsed imports (see `_CACHE_FORMAT`), or None to parse every file."""
    modules: dict[str, Path] = {}
    external: set[str] = set()
    todo: list[Path] = [Path(f) for f in entry_files]
    seen_files: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen_files:
            continue
        seen_files.add(path)
        st = os.stat(path)
        edges, names = _edges_of(path, st.st_mtime_ns, st.st_size, root, cache)
        external |= names
        for module, found in edges:
            if module not in modules:
                modules[module] = found
                todo.append(found)
    return modules, external


@lru_cache(maxsize=None)
def installed_version(import_name: str) -> str:
    """Version of the distribution providing `import_name`, or "absent"."""
    try:
        return metadata.version(DISTRIBUTION_OF.get(import_name, import_name))
    except metadata.PackageNotFoundError:
        return "absent"


def _entry_name(node: ast.expr) -> str | None:
    """The name an entry of a catalog table is made with: its call's first string argument."""
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        return str(node.args[0].value)
    return None


@lru_cache(maxsize=None)
def _table_layout(source: bytes, table: str) -> tuple[str, str, tuple[tuple[str | None, str], ...]]:
    """(text before, text after, (entry name, entry source) ...) of the module-level tuple `table`;
    parsed once per source, so each job's cut-down copy is a join."""
    lines = source.splitlines(keepends=True)

    def segment(node: ast.expr) -> str:
        # ast's offsets are UTF-8 byte columns; ast.get_source_segment would split the whole
        # source again for every entry
        if node.lineno == node.end_lineno:
            return lines[node.lineno - 1][node.col_offset:node.end_col_offset].decode("utf-8")
        first = lines[node.lineno - 1][node.col_offset:]
        last = lines[node.end_lineno - 1][:node.end_col_offset]
        return b"".join([first, *lines[node.lineno:node.end_lineno - 1], last]).decode("utf-8")

    for node in ast.parse(source).body:
        target = node.target if isinstance(node, ast.AnnAssign) else (
            node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None)
        if isinstance(target, ast.Name) and target.id == table and isinstance(node.value, (ast.Tuple, ast.List)):
            entries = tuple((_entry_name(e), segment(e)) for e in node.value.elts)
            return (b"".join(lines[:node.lineno - 1]).decode("utf-8"), b"".join(lines[node.end_lineno:]).decode("utf-8"),
                    entries)
    raise ValueError(f"no module-level tuple {table!r} to cut down")


def _keeping_entries(source: bytes, table: str, keep: tuple[str, ...]) -> bytes:
    """`source` with the module-level tuple `table` cut down to the entries named in `keep`."""
    before, after, entries = _table_layout(source, table)
    kept = [segment for name, segment in entries if name in keep]
    return (before + f"{table} = ({', '.join(kept)}{',' if kept else ''})\n" + after).encode()


def code_fingerprint(*entries: str | Path, root: Path = SOURCE_ROOT,
                     tables: tuple[tuple[str, str], ...] = (), keep: tuple[str, ...] = (),
                     cache: Path | None = None) -> str:
    """Hash of what the given scripts or ``ferxai`` module names run: the source of every ferxai
    module they reach and the versions of the third-party packages those import.

    `tables` are (module, tuple name) pairs of catalogs, such as the methods' entries: in them only
    the entries named in `keep` (the job's own method) count, so adding or editing one method's
    entry changes that method's jobs' fingerprint only; the rest of the module counts whole."""
    files: list[Path] = []
    for entry in entries:
        if isinstance(entry, str) and entry.split(".")[0] == PACKAGE:
            found = _module_file(str(entry), root)
            if found is None:
                raise ValueError(f"no module {entry} under {root}")
            files.append(found)
        else:
            files.append(Path(entry))
    modules, external = module_closure(files, root, cache)
    table_of = {modules[name]: table for name, table in tables if name in modules}
    digest = hashlib.sha256()
    for path in sorted(set(files) | set(modules.values())):
        digest.update(_label(path, root))
        source = _read(path, root, cache)[0]
        if path in table_of:
            source = _keeping_entries(source, table_of[path], tuple(sorted(keep)))
        digest.update(source)
    for name in sorted(external):
        digest.update(f"{name}=={installed_version(name)}\n".encode())
    return digest.hexdigest()[:16]


__all__ = ["code_fingerprint", "installed_version", "module_closure"]
