"""Compiling a batch of rules for some targets, in parallel processes when the batch is large.

Each rule is independent, so a batch maps over files; results come back in file order, so output is the same
whatever the number of processes. A worker returns plain data (diagnostics and query texts), never raises for
a bad rule."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from siemforge.backends.registry import targets
from siemforge.compiler.api import CompileResult, compile_rules, root_filters, rule_root
from siemforge.compiler.cache import RuleCache
from siemforge.compiler.diagnostics import CompileError, Diagnostic
from siemforge.compiler.sources import active_folders, use_source_dirs

PARALLEL_FROM = 64  # below this many rules, starting processes costs more than it saves


@dataclass(slots=True)
class FileResult:
    path: Path
    diagnostics: list[Diagnostic] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    failures: int = 0


def compile_one(path: Path, target_names: tuple[str, ...], binding: str | None, cache_dir: str | None,
                root: Path | None = None) -> FileResult:
    out = FileResult(path)
    for result in compile_rules(path, RuleCache(Path(cache_dir)) if cache_dir else None, root):
        _lower_one(out, path, result, target_names, binding)
    return out


def _lower_one(out: FileResult, path: Path, result: CompileResult, target_names: tuple[str, ...],
               binding: str | None) -> None:
    out.diagnostics.extend(result.diagnostics)
    if result.rule is None:
        out.failures += 1
        return
    registry = targets()
    for name in target_names:
        tgt = registry[name]
        try:
            query = tgt.compile(result.rule, binding)
        except CompileError as exc:
            out.diagnostics.extend(d.in_file(path) for d in exc.diagnostics)
            out.failures += 1
            continue
        out.items.append({"id": result.rule.meta.id, "title": result.rule.meta.title, "target": tgt.name,
                          "binding": tgt.binding_name(result.rule, binding), "query": query, "file": str(path),
                          "ext": tgt.extension})


def _star(args: tuple[Path, tuple[str, ...], str | None, str | None, Path]) -> FileResult:
    return compile_one(*args)


def _worker_start(source_dirs: tuple[Path, ...] = ()) -> None:
    """A compile worker allocates many short-lived objects and keeps none: what it inherited is frozen out of the
    cyclic collector and young collections run less often (about 5% of the worker's time on the SigmaHQ corpus).
    The user's source folders in use are read again (a worker started by spawn or forkserver inherits nothing)."""
    if source_dirs != active_folders().dirs:
        use_source_dirs(source_dirs)
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)


def compile_batch(files: list[Path], target_names: tuple[str, ...], binding: str | None,
                  cache_dir: Path | None, given: Sequence[Path] = ()) -> Iterator[FileResult]:
    """Results in file order, each as soon as it and those before it are done, so that the caller writes
    outputs while the workers still compile. `given`: the files and folders named on the command line (each
    rule's folder of rules is found from them: compiler.api.rule_root)."""
    jobs = [(f, target_names, binding, str(cache_dir) if cache_dir else None, rule_root(f, given)) for f in files]
    workers = min(os.cpu_count() or 1, 8)
    if len(files) < PARALLEL_FROM or workers < 2:
        yield from map(_star, jobs)
        return
    for root in {job[4] for job in jobs}:  # read once here: the forked workers inherit the filters of each root
        root_filters(root)
    # as the gc module's docs advise before fork(): what the workers inherit is frozen, so no collection (in the
    # parent while it writes results, or in a worker) walks those objects or dirties their shared pages
    gc.freeze()
    with ProcessPoolExecutor(max_workers=workers, initializer=_worker_start,
                             initargs=(active_folders().dirs,)) as pool:
        yield from pool.map(_star, jobs, chunksize=max(8, len(jobs) // (workers * 32)))
