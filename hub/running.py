"""Running totals: each device's current hour as its readings commit, between two rollups.

Live values and the current hour's alerts follow the commit of a reading, not the rollup's
pacing (ARCHITECTURE.md §5 "Real time"). In-order readings are the common case: a device whose
state is *clean* (it extends, reading by reading, from the last state the rollup computed)
books each committed reading exactly as ``compute_hourly`` would (``hub.energy.pair_shares``:
one measured share, or a gap spread over the hours it overlaps; an interval meter's reading is
its own energy), in the same order, so its hour total is the float the rollup will store.

Anything else makes the device *dirty* and no total is guessed: a reading not after the last
one, one that does not follow it (a skipped ``seq``, or without seqs a silence of more than
``CONTIGUOUS_INTERVALS`` reading intervals: another hub replica may hold the readings between),
a drop of the register (glitch or reset, decided by the reading after it), an increase that
the power limit would quarantine, an unknown device. The rollup stays the authority: its
result re-seeds the state (``reseed``) and a changed state is published as a correction.

Thread safety: the writers (``committed``) and the rollup thread (``reseed``) share the states
under one lock; per reading the work is dict lookups and float adds.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from contract.payloads import Reading
from contract.readings import MAX_POWER_W
from hub.energy import Quality, hour_floor, implied_power_w, pair_shares
from hub.registry import DeviceInfo
from hub.rollup import interval_power_w
from hub.rollup_store import RollupOutcome, power_limit_w

# Without seqs, a reading follows the last one if it comes within this many reading intervals.
CONTIGUOUS_INTERVALS = 1.5


@dataclass(frozen=True, slots=True)
class LiveTotal:
    """What a live event says of a device: its newest reading and the total of that hour."""

    device_id: UUID
    reading: Reading
    hour: datetime
    hour_kwh: float | None  # None: not known until the rollup has run (the state is dirty)
    quality: str | None
    clean: bool  # the total extends the rollup's state in order: alerts may be decided on it


@dataclass(slots=True)
class _State:
    last: Reading  # the newest reading committed (accepted or not)
    clean: bool
    known: bool  # hour_kwh is the hour's total (clean, or as the rollup left it)
    hour: datetime
    hour_kwh: float
    quality: Quality
    ref_ts: datetime  # a cumulative meter's last accepted reading (the energy maths' reference)
    ref_energy: float
    dirty_at: float = -math.inf  # time.monotonic() when a reading last made the state dirty

    def total(self, device_id: UUID) -> LiveTotal:
        if self.known:
            return LiveTotal(
                device_id, self.last, self.hour, self.hour_kwh, self.quality.value, self.clean
            )
        return LiveTotal(device_id, self.last, hour_floor(self.last.ts), None, None, False)


def _unknown(reading: Reading) -> _State:
    hour = hour_floor(reading.ts)
    return _State(
        reading, False, False, hour, 0.0, Quality.MEASURED, reading.ts, 0.0, time.monotonic()
    )


class RunningTotals:
    def __init__(
        self,
        devices: Callable[[UUID], DeviceInfo | None],
        *,
        max_power_w: float = MAX_POWER_W,
    ) -> None:
        self._devices = devices
        self._max_power_w = max_power_w
        self._states: dict[UUID, _State] = {}
        # What the last total published for each device showed: a state made dirty by an
        # older reading publishes nothing then, so the rollup's result is compared with this,
        # not with the state (whose total then stays unknown).
        self._published: dict[UUID, tuple[object, ...]] = {}
        self._lock = threading.Lock()

    def committed(self, readings: Iterable[Reading]) -> list[LiveTotal]:
        """Readings just committed (redeliveries included): the totals of the devices whose
        newest reading changed."""
        changed: dict[UUID, _State] = {}
        with self._lock:
            states = self._states
            for r in readings:
                state = states.get(r.device_id)
                if state is None:
                    states[r.device_id] = changed[r.device_id] = _unknown(r)
                elif self._step(state, r):
                    changed[r.device_id] = state
            return [self._publish(state.total(device_id)) for device_id, state in changed.items()]

    def _publish(self, total: LiveTotal) -> LiveTotal:
        self._published[total.device_id] = _shown(total)
        return total

    def _step(self, state: _State, r: Reading) -> bool:
        """Book ``r`` into ``state``; True if it is the device's newest reading."""
        last = state.last
        if r.ts <= last.ts:
            if r.ts != last.ts or r.energy_kwh != last.energy_kwh:  # else: a redelivery
                self._dirty(state)  # late or conflicting: the rollup decides
            return False
        state.last = r
        if not state.clean:
            return True
        info = self._devices(r.device_id)
        if info is None or not _follows(last, r, info.interval_s):
            self._dirty(state)
            return True
        limit = power_limit_w(info, self._max_power_w)
        if info.meter_kind == "interval":
            if interval_power_w(r.energy_kwh, info.interval_s) > limit:
                self._dirty(state)  # the rollup quarantines it
                return True
            hour = hour_floor(r.ts)
            if hour != state.hour:
                state.hour, state.hour_kwh, state.quality = hour, 0.0, Quality.MEASURED
            state.hour_kwh += r.energy_kwh
            return True
        amount = r.energy_kwh - state.ref_energy
        if amount < 0 or implied_power_w(amount, state.ref_ts, r.ts) > limit:
            self._dirty(state)  # a glitch, a reset or a quarantine: decided by the rollup
            return True
        hour = hour_floor(r.ts)
        if hour != state.hour:
            state.hour, state.hour_kwh, state.quality = hour, 0.0, Quality.MEASURED
        shares = pair_shares(state.ref_ts, r.ts, amount)
        for share_hour, share in shares:
            if share_hour == hour:
                state.hour_kwh += share
                if len(shares) > 1 and state.quality.severity < Quality.ESTIMATED.severity:
                    state.quality = Quality.ESTIMATED
        state.ref_ts, state.ref_energy = r.ts, r.energy_kwh
        return True

    @staticmethod
    def _dirty(state: _State) -> None:
        state.clean = state.known = False
        state.dirty_at = time.monotonic()

    def reseed(self, outcome: RollupOutcome) -> list[LiveTotal]:
        """After a rollup pass committed: its devices' states as it computed them; the totals
        that changed (a correction, or a dirty device's total now known).

        A state that has seen a reading newer than the pass's, or was made dirty after the
        pass began (that reading may be missing from its snapshot; its own rollup mark brings
        another pass), is left alone."""
        out: list[LiveTotal] = []
        with self._lock:
            for rw in outcome.rewrites:
                latest = outcome.latest.get(rw.device_id)
                if latest is None:
                    continue
                state = self._states.get(rw.device_id)
                if state is not None and (
                    latest.ts < state.last.ts
                    or (not state.clean and state.dirty_at >= outcome.started)
                ):
                    continue
                hour = hour_floor(latest.ts)
                row = next((h for h in reversed(rw.rows) if h.hour == hour), None)
                info = self._devices(rw.device_id)
                ref = rw.reference
                interval = info is not None and info.meter_kind == "interval"
                clean = (
                    row is not None
                    and info is not None
                    and (interval or (ref is not None and ref.ts == latest.ts))
                )
                fresh = _State(
                    last=latest,
                    clean=clean,
                    known=row is not None,
                    hour=hour,
                    hour_kwh=row.energy_kwh if row else 0.0,
                    quality=Quality(row.quality) if row else Quality.MEASURED,
                    ref_ts=ref.ts if ref else latest.ts,
                    ref_energy=ref.energy_kwh if ref else 0.0,
                )
                self._states[rw.device_id] = fresh
                total = fresh.total(rw.device_id)
                if self._published.get(rw.device_id) != _shown(total):
                    out.append(self._publish(total))
        return out

    def forget(self, device_ids: Iterable[UUID]) -> None:
        with self._lock:
            for device_id in device_ids:
                self._states.pop(device_id, None)
                self._published.pop(device_id, None)


def _follows(last: Reading, r: Reading, interval_s: float) -> bool:
    """``r`` is the reading after ``last`` (``r.ts > last.ts`` is known)."""
    if r.seq is not None and last.seq is not None:
        return r.seq == last.seq + 1
    return (r.ts - last.ts).total_seconds() <= CONTIGUOUS_INTERVALS * interval_s


def _shown(total: LiveTotal) -> tuple[object, ...]:
    """What a live event shows of a total."""
    return (total.reading.ts, total.hour, total.hour_kwh, total.quality)
