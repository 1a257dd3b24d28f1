"""Faults in what the meter measures: counter reset, glitch to zero, clock skew.

``FaultySensor`` wraps a sensor and transforms each reading it takes (in slot order):

* ``reset@T``: the register restarts from zero just after the last reading before T: the
  first reading at or after T reports that interval's energy, and later ones keep counting
  from there (every reset adds to the offset).
* ``glitch@T``: the first reading at or after T reports 0 kWh (and 0 W); the next is normal.
* ``skew@T,by=D``: from T on, the meter's clock is off by D: readings carry ``slot + D``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from msgspec.structs import replace

from device_sim.scenario import VALUE_KINDS, Fault
from firmware_stub.model import Measurement, Sensor


class FaultySensor:
    def __init__(self, inner: Sensor, faults: Sequence[Fault]) -> None:
        self._inner = inner
        self._faults = sorted((f for f in faults if f.kind in VALUE_KINDS), key=lambda f: f.at)
        self._fired: set[int] = set()
        self._reset_base = 0.0
        self._last_raw: float | None = None

    def __call__(self, ts: datetime) -> Measurement:
        m = self._inner(ts)
        raw = m.energy_kwh
        glitch = False
        for i, fault in enumerate(self._faults):
            if ts < fault.at:
                continue
            first = i not in self._fired
            self._fired.add(i)
            if fault.kind == "reset" and first:
                self._reset_base = raw if self._last_raw is None else self._last_raw
            elif fault.kind == "glitch":
                glitch = glitch or first
            elif fault.kind == "skew":
                m = replace(m, ts=(m.ts or ts) + fault.skew)
        self._last_raw = raw
        if glitch:
            return replace(m, energy_kwh=0.0, power_w=0.0)
        return replace(m, energy_kwh=round(raw - self._reset_base, 6))
