"""A cache of compiled rules keyed by content hash, so re-compiling a large rule set costs a file read per rule.

An entry is keyed by the rule file's resolved path, its path as given, and its bytes plus the siemforge version, the
built-in source definitions and the user's source folders in use (their files' names and bytes); it records the
hashes of the other files the rule read (lookup tables) and is used only while they are unchanged. Entries are
pickles of the RuleIR and its diagnostics, written atomically; a corrupt or foreign entry is ignored. Off when
SIEMFORGE_NO_CACHE is set; location from SIEMFORGE_CACHE_DIR or XDG_CACHE_HOME.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import stat
import sys
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from siemforge import __version__

from . import ir
from .diagnostics import Diagnostic
from .limits import MAX_LOOKUP_BYTES

FORMAT = 1


@dataclass(frozen=True, slots=True)
class CacheEntry:
    rule: ir.RuleIR
    diagnostics: tuple[Diagnostic, ...]
    dependencies: tuple[tuple[str, str], ...]  # (path, sha256)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@lru_cache(maxsize=1)
def _environment_key() -> str:
    """Everything besides the rule that decides its IR: the compiler's own code (not only its version number, which
    a development checkout does not bump), the sources and bindings, the grammars, and pySigma's version."""
    h = hashlib.sha256(f"{FORMAT}:{__version__}:pysigma {_pysigma_version()}".encode())
    for pkg in ("siemforge.compiler", "siemforge.sources", "siemforge.grammars"):
        for name, data in _files(resources.files(pkg), ""):
            h.update(f"{pkg}/{name}".encode())
            h.update(data)
    return h.hexdigest()


def _pysigma_version() -> str:
    """pySigma's installed version, from its `.dist-info` folder's name on sys.path (the installed-projects layout:
    https://packaging.python.org/en/latest/specifications/recording-installed-packages/), as importlib.metadata
    finds it, without importing importlib.metadata (~0.02 s of every command's start-up); that when not found so."""
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for n in names:
            if n.lower().startswith("pysigma-") and n.endswith(".dist-info"):
                return n[len("pysigma-"):-len(".dist-info")]
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pysigma")
    except PackageNotFoundError:  # pragma: no cover
        return "none"


def _files(folder: Any, prefix: str) -> list[tuple[str, bytes]]:
    """The (name, bytes) of the .py, .yml and .lark files under a package folder, sorted by name. A folder on disk is
    walked with os.scandir (no stat per file: a few ms for the ~370 files); another Traversable (a zipped install)
    through its own API."""
    if isinstance(folder, Path):
        return _disk_files(str(folder), prefix)
    out: list[tuple[str, bytes]] = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.is_dir():
            if entry.name != "__pycache__":
                out.extend(_files(entry, f"{prefix}{entry.name}/"))
        elif entry.name.endswith(_HASHED):
            out.append((prefix + entry.name, entry.read_bytes()))
    return out


_HASHED = (".py", ".yml", ".lark")


def _disk_files(folder: str, prefix: str) -> list[tuple[str, bytes]]:
    with os.scandir(folder) as it:
        entries = sorted(it, key=lambda e: e.name)
    out: list[tuple[str, bytes]] = []
    for e in entries:
        if e.is_dir():
            if e.name != "__pycache__":
                out.extend(_disk_files(e.path, f"{prefix}{e.name}/"))
        elif e.name.endswith(_HASHED):
            with open(e.path, "rb") as fh:
                out.append((prefix + e.name, fh.read()))
    return out


def default_dir() -> Path | None:
    if os.environ.get("SIEMFORGE_NO_CACHE"):
        return None
    if os.environ.get("SIEMFORGE_CACHE_DIR"):
        return Path(os.environ["SIEMFORGE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "siemforge"


@dataclass(slots=True)
class RuleCache:
    root: Path

    def key(self, path: Path, data: bytes) -> str:
        from .sources import active_folders  # the user's sources and bindings in use decide the IR too

        env = _environment_key() + active_folders().digest
        # the path as given too: the IR spells files the rule names (lookups) from it, `rules/x/../lookups/t.csv` or
        # `/abs/rules/x/../lookups/t.csv`, and outputs must not depend on how an earlier run named the rule
        return _sha(b"\0".join([env.encode(), str(path.resolve()).encode(), str(path).encode(), data]))

    def get(self, path: Path, data: bytes) -> CacheEntry | None:
        f = self.root / "rules" / (self.key(path, data) + ".pickle")
        try:
            entry = pickle.loads(f.read_bytes())
        except Exception:  # a missing, truncated or foreign entry is a miss
            return None
        if not isinstance(entry, CacheEntry):
            return None
        for dep, digest in entry.dependencies:
            try:
                if _sha(_read_lookup(Path(dep))) != digest:
                    return None
            except OSError:
                return None
        return entry

    def put(self, path: Path, data: bytes, entry: CacheEntry) -> None:
        d = self.root / "rules"
        try:
            d.mkdir(parents=True, exist_ok=True)
            f = d / (self.key(path, data) + ".pickle")
            tmp = f.with_name(f"{f.name}.{os.getpid()}.tmp")
            tmp.write_bytes(pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL))
            tmp.replace(f)
        except OSError:
            pass  # a read-only or full disk only costs speed


def _read_lookup(path: Path) -> bytes:
    """A lookup file's bytes, to see whether it changed since the rule was cached; it may have become a symlink to
    /dev/zero or a FIFO since (a CI cache outlives the checkout), so anything but a regular file of at most
    MAX_LOOKUP_BYTES is a miss (OSError) without being read: the rule is loaded again, and the loader says why."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # O_NONBLOCK: a FIFO opens without a writer
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_LOOKUP_BYTES:
            raise OSError(f"{path}: not a regular file of at most {MAX_LOOKUP_BYTES} bytes")
        return fh.read(MAX_LOOKUP_BYTES + 1)


def dependencies_of(rule: ir.RuleIR) -> tuple[tuple[str, str], ...]:
    out = []
    for t in rule.lookups:
        try:
            out.append((t.path, _sha(_read_lookup(Path(t.path)))))
        except OSError:
            pass
    return tuple(out)
