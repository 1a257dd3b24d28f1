"""What a benchmark ran on, and what its processes cost: figures that make a run comparable.

The same code gave 75-82 k readings/s on one 2-core machine and 25-38 k/s on another of the same
size whose Python is 2.2x slower (a slower clock; the C ``mosquitto_sub`` is as fast on both).
So every run prints the CPU model, the core count and a pure-Python calibration loop beside its
figures, and the CPU seconds each process spent, so that a reader can tell the machine's speed
from the code's cost per reading.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def python_loop_s(n: int = 10**7) -> float:
    """Seconds for a pure-Python loop of n squares (the issue's calibration: 1.33 s on the
    slow machine, about 0.6 s on the fast one)."""
    t = time.perf_counter()
    s = 0
    for i in range(n):
        s += i * i
    return time.perf_counter() - t


def machine_line() -> str:
    return (
        f"machine: {cpu_model()}, nproc {os.cpu_count()}, "
        f"pure-Python 10^7 squares {python_loop_s():.2f} s"
    )


def _stat(pid: int) -> tuple[int, float] | None:
    """(ppid, CPU seconds of the process and of its reaped children)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "
    ppid = int(fields[1])
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return ppid, (utime + stime + cutime + cstime) / CLK_TCK


def tree_cpu_s(root: int) -> float:
    """CPU seconds of ``root`` and all its live descendants, plus the children they reaped
    (a PostgreSQL backend that ended counts in the postmaster's children's time)."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (st := _stat(int(entry.name))) is not None:
            stats[int(entry.name)] = st
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            total += stats[pid][1]
        todo += children.get(pid, [])
    return total


@dataclass
class CpuMeter:
    """CPU seconds spent by named process trees between ``start()`` and ``stop()``."""

    roots: dict[str, int]

    def start(self) -> None:
        self._t = time.perf_counter()
        self._before = {name: tree_cpu_s(pid) for name, pid in self.roots.items()}

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self._t
        spent = {n: tree_cpu_s(pid) - self._before[n] for n, pid in self.roots.items()}
        return {**spent, "wall": wall}
