"""Writing generated files without losing the user's: siemforge overwrites only files it wrote itself,
recorded in a manifest in the output folder; any other existing file is left alone and reported."""

from __future__ import annotations

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
        if path.exists() and relative not in self.owned:
            raise OutputError(
                f"{path} exists and was not written by siemforge; not overwriting it "
                "(move it away or choose another -o folder)"
            )
        if relative in self.written:
            raise OutputError(f"two rules would both write {path}; give them distinct ids")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        self.written.add(relative)

    def save_manifest(self) -> None:
        names = sorted(self.owned | self.written)
        (self.root / MANIFEST).write_text("\n".join(names) + "\n", encoding="utf-8")
