"""A command run as a child process and measured: wall time, and peak RSS from the child's own rusage (wait4), not
this process's. What the benchmarks that time a `siemforge` command (or another tool) share."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Measured:
    seconds: float  # wall time, start to exit
    peak_mb: float  # the child's peak resident set (ru_maxrss of its wait4 rusage)
    exit_code: int
    stdout: bytes  # empty when it went to a file
    stderr: bytes


def measure(cmd: list[str], env: dict[str, str] | None = None, stdout: Path | None = None) -> Measured:
    """Run `cmd` to its end; its output is kept (in temporary files, whatever its size), or written to `stdout`."""
    with tempfile.TemporaryFile() as kept, tempfile.TemporaryFile() as err:
        with stdout.open("wb") if stdout is not None else contextlib.nullcontext(kept) as out:
            started = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
            _, status, usage = os.wait4(proc.pid, 0)
            seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4
        kept.seek(0)
        err.seek(0)
        return Measured(seconds, usage.ru_maxrss / 1024, proc.returncode, kept.read(), err.read())
