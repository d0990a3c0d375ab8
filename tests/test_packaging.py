"""The package: what the wheel holds, what mypy sees, how targets are found, and what importing the CLI costs.

The code lives in the top-level folders; src/siemforge/ links them into one package (see pyproject.toml).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from helpers import ROOT

CODE_FOLDERS = ("compiler", "backends", "cli", "grammars", "importers", "sources")  # each is siemforge.<folder>
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", "*.egg-info")  # a fresh clone has none


def _copy_package_tree(dest: Path) -> None:
    """What a build reads: pyproject, README, src/ (its links kept as links) and the code folders."""
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    shutil.copytree(ROOT / "src", dest / "src", symlinks=True, ignore=SKIP)
    for folder in CODE_FOLDERS:
        shutil.copytree(ROOT / folder, dest / folder, ignore=SKIP)


def _code_files(root: Path) -> set[str]:
    """Every file the wheel must carry, as its path in the wheel: all of each code folder, and the package root."""
    files = {f"siemforge/{p.name}" for p in (root / "src" / "siemforge").iterdir() if p.is_file()}
    for folder in CODE_FOLDERS:
        for p in (root / folder).rglob("*"):
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc":
                files.add(f"siemforge/{folder}/{p.relative_to(root / folder).as_posix()}")
    return files


def test_links_point_at_the_code_folders() -> None:
    pkg = ROOT / "src" / "siemforge"
    links = sorted(p.name for p in pkg.iterdir() if p.is_symlink())
    assert links == sorted(CODE_FOLDERS)
    for name in links:
        assert (pkg / name).resolve() == (ROOT / name).resolve(), name


def test_wheel_holds_every_module_and_data_file(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    _copy_package_tree(tree)
    # a new subpackage nobody listed anywhere (the stub backend of issue 9): found by package discovery
    new = tree / "backends" / "sqlstub"
    new.mkdir()
    (new / "__init__.py").write_text('"""A stub target package: it must reach the wheel unlisted."""\n')
    (new / "dialect.py").write_text("NAME = 'stub'\n")
    expected = _code_files(tree)
    assert "siemforge/backends/sqlstub/dialect.py" in expected
    dist = tmp_path / "dist"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(tree), "--no-deps", "--no-build-isolation", "--no-index",
         "-q", "-w", str(dist)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "PIP_NO_INPUT": "1"},
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    (wheel,) = dist.glob("siemforge-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        infos = zf.infolist()
        names = {i.filename for i in infos}
        dist_info = next(n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info"))
        entry_points_txt = zf.read(f"{dist_info}/entry_points.txt").decode()
    missing = sorted(expected - names)
    assert not missing, f"not in the wheel (add a package-data glob in pyproject.toml): {missing}"
    extra = sorted(n for n in names - expected if not n.startswith(dist_info + "/"))
    assert not extra, f"in the wheel but not in the code folders: {extra}"
    links = [i.filename for i in infos if stat.S_ISLNK(i.external_attr >> 16)]
    assert not links, f"symlinks in the wheel: {links}"
    assert "[siemforge.targets]" in entry_points_txt


def _declared_targets() -> dict[str, str]:
    doc = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return dict(doc["project"]["entry-points"]["siemforge.targets"])


def test_installed_entry_points_match_pyproject() -> None:
    """A target added to pyproject.toml needs `pip install -e .` again to be seen; this says so."""
    from siemforge.backends.registry import declared

    installed = {name: ep.value for name, ep in declared().items()}
    assert installed == _declared_targets(), "stale install: run .venv/bin/pip install -e '.[test]'"


def test_targets_come_from_the_entry_points() -> None:
    from siemforge.backends.registry import targets

    found = targets()
    assert sorted(found) == sorted(_declared_targets())
    for name, t in found.items():
        assert t.name == name and t.bindings, name


def _run(code: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_importing_the_cli_does_no_backend_work() -> None:
    """`siemforge --help` and commands that need no target do not import lowerings nor read binding files."""
    proc = _run("import sys, siemforge.cli.main\n"
                "import siemforge.compiler.bindings as b\n"
                "print(sorted(m for m in sys.modules if m.startswith('siemforge.backends')))\n"
                "print(b.package_bindings.cache_info().currsize)")
    assert proc.returncode == 0, proc.stderr
    modules, bindings_read = proc.stdout.splitlines()
    assert modules == "['siemforge.backends', 'siemforge.backends.registry']"
    assert bindings_read == "0"


@pytest.mark.parametrize("folder", CODE_FOLDERS)
def test_a_code_folder_is_not_a_second_top_level_package(folder: str) -> None:
    """From the repository root `import compiler` would load compiler/ir.py a second time, as another module object
    (whose classes fail isinstance against siemforge.compiler.ir's): it is refused."""
    proc = _run(f"import {folder}")
    assert proc.returncode != 0
    assert f"import siemforge.{folder}, not {folder}" in proc.stderr


def test_mypy_sees_the_ir_in_backends_and_cli(tmp_path: Path) -> None:
    """A type error against the IR in a backend or the CLI fails mypy (it was Any there with the old mapping)."""
    if subprocess.run([sys.executable, "-m", "mypy", "--version"], capture_output=True).returncode != 0:
        pytest.skip("mypy is not installed (pip install -e '.[test]')")
    _copy_package_tree(tmp_path)
    probe = ("from siemforge.compiler import ir\n\n\n"
             "def probe(rule: ir.RuleIR) -> None:\n"
             "    ir.NoSuchNode(1, 2, 3)\n"
             "    title: int = rule.meta.title\n")
    (tmp_path / "backends" / "kql" / "typeprobe.py").write_text(probe)
    (tmp_path / "cli" / "typeprobe.py").write_text(probe)
    if (ROOT / ".mypy_cache").is_dir():  # the copy keeps paths and mtimes: only the probes and what they touch rerun
        shutil.copytree(ROOT / ".mypy_cache", tmp_path / ".mypy_cache")
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stdout[-4000:] + proc.stderr[-2000:]
    for where in ("backends/kql/typeprobe.py", "cli/typeprobe.py"):
        assert f"{where}:5: error: Module has no attribute \"NoSuchNode\"" in proc.stdout, proc.stdout[-4000:]
        assert f"{where}:6: error: Incompatible types in assignment" in proc.stdout, proc.stdout[-4000:]
    assert "Found 4 errors in 2 files" in proc.stdout, proc.stdout[-4000:]


def test_a_broken_entry_point_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import EntryPoint

    from siemforge.backends import registry

    wrong = EntryPoint(name="sql", value="siemforge.backends.kql:target", group=registry.GROUP)  # gives 'sentinel'
    monkeypatch.setattr(registry, "declared", lambda: {"sql": wrong})
    monkeypatch.setattr(registry, "_TARGETS", {})
    monkeypatch.setattr(registry, "_loaded", False)
    with pytest.raises(registry.RegistryError, match="entry point sql = siemforge.backends.kql:target"):
        registry.targets()
    monkeypatch.setattr(registry, "declared", dict)
    with pytest.raises(registry.RegistryError, match="is siemforge installed"):
        registry.targets()
