"""Progress bars (Rich) for the commands that can take more than a second or two: compiling or testing many rules,
a whole build, a run over large logs (bytes read, events per second). Drawn on stderr, and only when both stdout and
stderr are terminals: never into a pipe, a file, a CI log or a `--format json` document, so what a script reads is
the same with or without them."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.text import Text

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


class _EventsColumn(ProgressColumn):
    """Events read so far, and per second."""

    def render(self, task: Task) -> Text:
        events = int(task.fields.get("events", 0))
        elapsed = task.elapsed or 0.0
        rate = f", {events / elapsed:,.0f}/s" if elapsed > 0.5 else ""
        return Text(f"{events:,} events{rate}", style="progress.data.speed")


@contextmanager
def reading(enabled: bool, total_bytes: int) -> Iterator[Callable[[int, int], None] | None]:
    """A bar of the bytes read out of `total_bytes`, with the events read and their rate; yields the meter a run is
    given (the executor's reader.Meter), or None when disabled."""
    if not enabled:
        yield None
        return
    progress = Progress(
        SpinnerColumn(),
        TextColumn("reading"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        _EventsColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    task = progress.add_task("reading", total=total_bytes or None, events=0)
    pending = [0, 0, 0]  # bytes and events not yet shown, events in all
    last = [time.monotonic()]

    def meter(n_bytes: int, n_events: int) -> None:
        pending[0] += n_bytes
        pending[1] += n_events
        now = time.monotonic()
        if now - last[0] >= 0.1:  # Rich redraws ten times a second: no more updates than that
            pending[2] += pending[1]
            progress.update(task, advance=pending[0], events=pending[2])
            pending[0] = pending[1] = 0
            last[0] = now

    with progress:
        yield meter
