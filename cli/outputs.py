"""Writing generated files without losing the user's: siemforge overwrites or removes only files it wrote itself
and that nobody changed since, recorded (name and SHA-256 of the content) in a manifest in the output folder; any
other existing file is left alone and reported."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import typer

from .console import err

MANIFEST = ".siemforge-outputs"
ANCESTORS = 4  # how many folders up a manifest may record a file of the output folder (an import's `-o` folder)

_UNSAFE = re.compile(r"[^\w.-]")  # \w: letters and digits of any script, and `_`, as str.isalnum() + "_"


def slug(s: str) -> str:
    """A file name made of a rule id: every character but letters, digits, `_`, `.` and `-` becomes `_`."""
    return _UNSAFE.sub("_", s)


class OutputError(Exception):
    pass


Record = dict[str, str | None]  # file (relative to the folder) -> SHA-256 of what siemforge wrote; None: not recorded


@dataclass(slots=True)
class OutputDir:
    root: Path
    owned: Record = field(default_factory=dict)  # what the manifest said when the folder was opened
    written: dict[str, str] = field(default_factory=dict)
    removed: set[str] = field(default_factory=set)
    kept: set[str] = field(default_factory=set)  # files this run would have rewritten but the user changed
    # files a manifest of an ancestor folder records (an import's `-o` folder records its rules' lookups/X.csv): ours
    # to overwrite, recorded in this folder's own manifest once written, never listed as stale here
    inherited: Record = field(default_factory=dict)
    lock: _Lock | None = None

    @classmethod
    def open(cls, root: Path) -> OutputDir:
        """Open (make) the folder and take its lock, held until finish(): a second run writing here waits, so that
        runs into one folder at once end as if run one after the other (each reads the record the other left)."""
        try:
            if root.exists() and not root.is_dir():
                raise OutputError(f"{root} exists and is not a folder")
            root.mkdir(parents=True, exist_ok=True)
            lock = _Lock.take(root)
            try:
                return cls(root, _read_manifest(root / MANIFEST), inherited=_ancestors(root), lock=lock)
            except BaseException:
                if lock is not None:
                    lock.release()
                raise
        except OSError as exc:
            raise OutputError(f"cannot use {root} as the output folder: {exc.strerror or exc}") from None

    def _recorded(self, relative: str) -> bool:
        return relative in self.owned or relative in self.inherited

    def _digest(self, relative: str) -> str | None:
        return self.owned[relative] if relative in self.owned else self.inherited.get(relative)

    def write(self, relative: str, data: str | bytes) -> None:
        """Write `data` (text as UTF-8) to `relative` under the folder. No symlink under the folder is followed: a
        folder of the path or the file itself that is a symlink (pointing anywhere) is refused, and every step is
        taken relative to an open folder (openat), so the check and the write see the same folders."""
        path = os.path.join(self.root, relative)
        if relative in self.written:
            raise OutputError(f"two rules would both write {path}; give them distinct ids")
        *folders, name = relative.split("/")
        if any(part in ("", ".", "..") for part in relative.split("/")):
            raise OutputError(f"cannot write {path}: not a plain path inside the output folder")
        fd = -1
        tmp: str | None = None
        try:
            fd = self._open_folder(folders, path)
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                st = None
            if st is not None and (not self._recorded(relative) or not stat.S_ISREG(st.st_mode)):
                raise OutputError(
                    f"{path} exists and was not written by siemforge; not overwriting it "
                    "(move it away or choose another -o folder)"
                )
            if st is not None and self._edited(fd, name, relative):
                self.kept.add(relative)
                raise OutputError(
                    f"{path} was changed since siemforge wrote it; not overwriting it "
                    "(move your version away, or delete it to have it written again)"
                )
            # a temporary name of our own beside the target, created exclusively (never a file of the user's, never
            # through a symlink), with the mode open() would give; renamed over the target once complete
            out_fd, tmp = _exclusive(fd, name)
            raw = data.encode("utf-8") if isinstance(data, str) else data
            with os.fdopen(out_fd, "wb") as fh:
                fh.write(raw)
            os.replace(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
            tmp = None
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=fd)
            if fd >= 0:
                os.close(fd)
        self.written[relative] = hashlib.sha256(raw).hexdigest()

    def _edited(self, folder_fd: int, name: str, relative: str) -> bool:
        """Whether the file differs from what siemforge recorded writing (a manifest of an older siemforge records no
        content: its files count as unchanged)."""
        recorded = self._digest(relative)
        if recorded is None:
            return False
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder_fd)
        with os.fdopen(fd, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest() != recorded

    def changed(self, relative: str) -> bool:
        """Whether a file siemforge wrote here earlier was edited since (a stale output the user changed is theirs
        now: --prune keeps it)."""
        *folders, name = relative.split("/")
        fd = -1
        try:
            fd = self._open_folder(folders, os.path.join(self.root, relative))
            return self._edited(fd, name, relative)
        except OSError:
            return False
        finally:
            if fd >= 0:
                os.close(fd)

    def _open_folder(self, folders: list[str], path: str) -> int:
        """An open descriptor of the folder `root/folders…`, made where missing; a symlink on the way is refused."""
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for part in folders:
                try:
                    os.mkdir(part, dir_fd=fd)
                except FileExistsError:
                    pass
                try:
                    sub = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                except OSError as exc:
                    if stat.S_ISLNK(os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode):
                        raise OutputError(f"cannot write {path}: {part} is a symlink; siemforge does not write "
                                          "through symlinks in the output folder") from None
                    raise exc
                os.close(fd)
                fd = sub
        except BaseException:
            os.close(fd)
            raise
        return fd

    def stale(self) -> list[str]:
        """Files an earlier run wrote here (the manifest says so) that this run did not write and that still exist
        as regular files, or as symlinks put in their place: the outputs of rules deleted or renamed since."""
        out = []
        for relative in sorted(self.owned.keys() - self.written.keys() - self.removed - self.kept):
            if any(part in ("", ".", "..") for part in relative.split("/")):
                continue  # not a path inside the folder (an edited manifest): never siemforge's to list or remove
            try:
                st = os.lstat(os.path.join(self.root, relative))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
                out.append(relative)
        return out

    def remove(self, relative: str) -> None:
        """Delete a file siemforge wrote here earlier (never through a symlink on the way), and forget it."""
        path = os.path.join(self.root, relative)
        if relative not in self.owned or any(part in ("", ".", "..") for part in relative.split("/")):
            raise OutputError(f"not removing {path}: siemforge did not write it")
        *folders, name = relative.split("/")
        fd = -1
        try:
            fd = self._open_folder(folders, path)
            if not stat.S_ISREG(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
                raise OutputError(f"not removing {path}: not a regular file")
            if self._edited(fd, name, relative):
                raise OutputError(f"not removing {path}: it was changed since siemforge wrote it")
            os.unlink(name, dir_fd=fd)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise OutputError(f"cannot remove {path}: {exc.strerror or exc}") from None
        finally:
            if fd >= 0:
                os.close(fd)
        self.removed.add(relative)
        for i in range(len(folders), 0, -1):  # the folders it leaves empty go too (never the output folder itself)
            try:
                os.rmdir(os.path.join(self.root, *folders[:i]))
            except OSError:  # not empty, or not a plain folder: kept
                break

    def finish(self) -> None:
        """Record what this run wrote, also when it stops at a refused write (a folder that cannot take the record
        has already been reported by that write), and let the next run in."""
        try:
            if self.written or self.removed:
                with contextlib.suppress(OutputError):
                    self.save_manifest()
        finally:
            if self.lock is not None:
                self.lock.release()
                self.lock = None

    def save_manifest(self) -> None:
        """Record what siemforge owns here. Under an exclusive lock, merged with what the file holds now, so that two
        runs writing into one folder at once both keep their files."""
        path = self.root / MANIFEST
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o666)
            with os.fdopen(fd, "r+", encoding="utf-8") as fh:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
                # what this run wrote, over what the file holds now (another run's writes), over what it held at open
                record = self.owned | _parse_manifest(fh.read()) | self.written
                fh.seek(0)
                fh.truncate()
                fh.write("".join(f"{name}\t{digest}\n" if digest else f"{name}\n"
                                 for name, digest in sorted(record.items()) if name not in self.removed))
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise OutputError(f"{path} is not siemforge's list of the files it wrote (not text)") from None


@dataclass(slots=True)
class _Lock:
    """An exclusive advisory lock (flock) on the output folder itself: no file of ours left in it, and released by
    the system when the process ends, however it ends. A folder this process holds already is shared (counted)."""
    key: tuple[int, int]
    fd: int

    @classmethod
    def take(cls, root: Path) -> _Lock | None:
        """The folder's lock; None where the folder cannot be locked (a folder we may write but not read, a file
        system without flock): the run goes on unlocked, as before there was a lock."""
        try:
            fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except PermissionError:
            return None
        try:
            st = os.fstat(fd)
            key = (st.st_dev, st.st_ino)
            if key in _HELD:
                os.close(fd)
                held = _HELD[key]
                _HELD[key] = (held[0], held[1] + 1)
                return cls(key, held[0])
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                err.print(f"waiting for another siemforge run writing to {root}", style="yellow", markup=False)
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as exc:
                if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                    raise
                os.close(fd)
                return None
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise
        _HELD[key] = (fd, 1)
        return cls(key, fd)

    def release(self) -> None:
        fd, count = _HELD.pop(self.key, (self.fd, 1))
        if count > 1:
            _HELD[self.key] = (fd, count - 1)
        else:
            os.close(fd)  # closing the only descriptor releases the flock


_HELD: dict[tuple[int, int], tuple[int, int]] = {}  # folder (device, inode) -> (locked descriptor, opens)


def _ancestors(root: Path) -> Record:
    """What the manifests of the folders above `root` (up to ANCESTORS of them, the nearest first) record of files
    under it, relative to it."""
    found: Record = {}
    here = Path(os.path.abspath(root))
    for depth in range(1, ANCESTORS + 1):
        if here.parent == here:
            break
        prefix = "/".join(Path(os.path.abspath(root)).parts[-depth:]) + "/"
        here = here.parent
        try:
            record = _read_manifest(here / MANIFEST)
        except (OutputError, OSError):
            continue  # not a record we can read: it owns nothing here
        for name, digest in record.items():
            if name.startswith(prefix) and name[len(prefix):] not in found:
                found[name[len(prefix):]] = digest
    return found


def _exclusive(folder_fd: int, name: str) -> tuple[int, str]:
    """A new file `.<name>.siemforge-<pid>[-n].tmp` in the open folder, opened for writing (O_EXCL: never an existing
    file or symlink)."""
    for n in range(100):
        candidate = f".{name}.siemforge-{os.getpid()}{f'-{n}' if n else ''}.tmp"
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
            return os.open(candidate, flags, 0o666, dir_fd=folder_fd), candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name for {name}")


def _parse_manifest(text: str) -> Record:
    """Lines `file<TAB>sha256`; a line without a tab (an older siemforge's manifest) records no content."""
    record: Record = {}
    for line in text.splitlines():
        name, tab, digest = line.strip().rpartition("\t")
        if not tab:
            name, digest = digest, ""
        if name:
            record[name] = digest.strip() or None
    return record


def _read_manifest(path: Path) -> Record:
    try:
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW), encoding="utf-8") as fh:
            return _parse_manifest(fh.read())
    except FileNotFoundError:
        return {}
    except IsADirectoryError:
        raise OutputError(f"{path} is a folder; siemforge keeps the list of files it wrote there") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OutputError(f"{path} is a symlink; siemforge keeps the list of files it wrote there") from None
        raise
    except UnicodeDecodeError:
        raise OutputError(f"{path} is not siemforge's list of the files it wrote (not text)") from None


@contextlib.contextmanager
def writing_to(root: Path) -> Iterator[OutputDir]:
    """The output folder of a command, what it wrote recorded at the end: a folder that cannot be used or a file
    that cannot be written is reported and ends the command (exit 2), with what was written so far kept."""
    d: OutputDir | None = None
    try:
        d = OutputDir.open(root)
        yield d
    except OutputError as exc:
        err.print(f"error: {exc}", style="bold red", markup=False)
        raise typer.Exit(2) from None
    finally:
        if d is not None:
            d.finish()
