"""Writing generated files without losing the user's: siemforge overwrites only files it wrote itself,
recorded in a manifest in the output folder; any other existing file is left alone and reported."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

MANIFEST = ".siemforge-outputs"
_UMASK = os.umask(0)  # read once, at import (single-threaded): outputs get the usual mode, as open() would give
os.umask(_UMASK)


class OutputError(Exception):
    pass


@dataclass(slots=True)
class OutputDir:
    root: Path
    owned: set[str] = field(default_factory=set)
    written: set[str] = field(default_factory=set)
    _folders: set[str] = field(default_factory=set)  # folders known to exist

    @classmethod
    def open(cls, root: Path) -> OutputDir:
        if root.exists() and not root.is_dir():
            raise OutputError(f"{root} exists and is not a folder")
        root.mkdir(parents=True, exist_ok=True)
        owned: set[str] = set()
        manifest = root / MANIFEST
        if manifest.exists():
            owned = {line.strip() for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()}
        return cls(root, owned)

    def write(self, relative: str, text: str) -> None:
        path = os.path.join(self.root, relative)
        if relative in self.written:
            raise OutputError(f"two rules would both write {path}; give them distinct ids")
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            st = None
        except OSError as exc:  # e.g. a file where a folder of the path should be
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
        if st is not None and (relative not in self.owned or not stat.S_ISREG(st.st_mode)):
            raise OutputError(
                f"{path} exists and was not written by siemforge; not overwriting it "
                "(move it away or choose another -o folder)"
            )
        folder = os.path.dirname(path)
        tmp: str | None = None
        try:
            if folder not in self._folders:
                os.makedirs(folder, exist_ok=True)
                self._folders.add(folder)
            # a temporary name of our own beside the target, created exclusively (never a file of the user's), with
            # the mode open() would give; renamed over the target once complete
            candidate = os.path.join(folder, f".{os.path.basename(path)}.siemforge-{os.getpid()}.tmp")
            try:
                fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
            except FileExistsError:
                fd, candidate = tempfile.mkstemp(dir=folder, prefix=".siemforge-", suffix=".tmp")
                os.fchmod(fd, 0o666 & ~_UMASK)
            tmp = candidate
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, path)
            tmp = None
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        self.written.add(relative)

    def save_manifest(self) -> None:
        names = sorted(self.owned | self.written)
        try:
            (self.root / MANIFEST).write_text("\n".join(names) + "\n", encoding="utf-8")
        except OSError as exc:
            raise OutputError(f"cannot write {self.root / MANIFEST}: {exc.strerror or exc}") from None
