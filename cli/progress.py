"""Progress bars (Rich) for the commands that can take more than a second or two: compiling or testing many rules,
a whole build. Drawn on stderr, and only when both stdout and stderr are terminals: never into a pipe, a file, a CI
log or a `--format json` document, so what a script reads is the same with or without them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from .console import err, out


def wanted(machine_output: bool = False) -> bool:
    """Whether to draw progress: not for machine-read output, and only when stdout and stderr are both terminals
    (Rich's test, which FORCE_COLOR also satisfies)."""
    return not machine_output and out.is_terminal and err.is_terminal


class Steps:
    """One bar per step of a command (`step(description, total)`, then `advance()`); does nothing when disabled, so
    the command's code reads the same either way."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress
        self._task: TaskID | None = None

    def step(self, description: str, total: int | None) -> None:
        if self._progress is None:
            return
        if self._task is not None:
            self._progress.remove_task(self._task)
        self._task = self._progress.add_task(description, total=total)

    def advance(self, n: int = 1) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, n)


@contextmanager
def steps(enabled: bool) -> Iterator[Steps]:
    """Progress for the duration of the block; the bar is removed at the end (transient), leaving only the output."""
    if not enabled:
        yield Steps(None)
        return
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    with progress:
        yield Steps(progress)
