"""Writing generated files without losing the user's: siemforge overwrites only files it wrote itself,
recorded in a manifest in the output folder; any other existing file is left alone and reported."""

from __future__ import annotations

import contextlib
import os
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
        path = self.root / relative
        if relative in self.written:
            raise OutputError(f"two rules would both write {path}; give them distinct ids")
        if (path.exists() or path.is_symlink()) and (relative not in self.owned or not path.is_file()):
            raise OutputError(
                f"{path} exists and was not written by siemforge; not overwriting it "
                "(move it away or choose another -o folder)"
            )
        tmp: str | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # a fresh temporary name beside the target (never a file of the user's), renamed over it when complete
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".siemforge-", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                os.fchmod(fh.fileno(), 0o666 & ~_UMASK)
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
