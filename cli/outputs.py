"""Writing generated files without losing the user's: siemforge overwrites only files it wrote itself,
recorded in a manifest in the output folder; any other existing file is left alone and reported."""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

MANIFEST = ".siemforge-outputs"


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
        try:
            if root.exists() and not root.is_dir():
                raise OutputError(f"{root} exists and is not a folder")
            root.mkdir(parents=True, exist_ok=True)
            return cls(root, _read_manifest(root / MANIFEST))
        except OSError as exc:
            raise OutputError(f"cannot use {root} as the output folder: {exc.strerror or exc}") from None

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
            fd, tmp = _exclusive(folder, os.path.basename(path))
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

    def finish(self) -> None:
        """Record what this run wrote, also when it stops at a refused write; a folder that cannot take the record
        has already been reported by that write."""
        if self.written:
            with contextlib.suppress(OutputError):
                self.save_manifest()

    def save_manifest(self) -> None:
        """Record what siemforge owns here. Under an exclusive lock, merged with what the file holds now, so that two
        runs writing into one folder at once both keep their files."""
        path = self.root / MANIFEST
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            with os.fdopen(fd, "r+", encoding="utf-8") as fh:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
                names = sorted(self.owned | self.written | _parse_manifest(fh.read()))
                fh.seek(0)
                fh.truncate()
                fh.write("\n".join(names) + "\n")
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise OutputError(f"{path} is not siemforge's list of the files it wrote (not text)") from None


def _exclusive(folder: str, name: str) -> tuple[int, str]:
    """A new file `.<name>.siemforge-<pid>[-n].tmp` in `folder`, opened for writing."""
    for n in range(100):
        candidate = os.path.join(folder, f".{name}.siemforge-{os.getpid()}{f'-{n}' if n else ''}.tmp")
        try:
            return os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666), candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name for {name} in {folder}")


def _parse_manifest(text: str) -> set[str]:
    return {line.strip() for line in text.splitlines() if line.strip()}


def _read_manifest(path: Path) -> set[str]:
    try:
        return _parse_manifest(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return set()
    except IsADirectoryError:
        raise OutputError(f"{path} is a folder; siemforge keeps the list of files it wrote there") from None
    except UnicodeDecodeError:
        raise OutputError(f"{path} is not siemforge's list of the files it wrote (not text)") from None
