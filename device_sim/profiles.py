"""Synthetic household load: a seeded, realistic daily residential shape.

Power is constant over 5-minute buckets and depends only on the seed and the bucket, so the
energy between any two instants is the same whenever it is asked for (a restarted meter, or two
runs with the same seed, produce the same series). The shape, in the household's local time:

* a night base load (fridge, standby): 0.1-0.3 kW;
* a morning peak (0.5-1 kW) around 06:30-07:45 on weekdays, 1-2 h later and lower at
  weekends;
* a small midday load, 2.5 times larger at weekends (people are at home);
* the evening peak (1.3-2.2 times the morning's, and wider) around 18:30-20:00, the day's
  largest, a little larger at weekends;
* noise: +-25 % per bucket, and appliance events (kettle, oven: +1-2.5 kW for a bucket),
  likelier when the household is active.

About 8-15 kWh a day. Power is always positive, so the register only increases.
"""

from __future__ import annotations

import functools
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

BUCKET_S = 300
_MASK = (1 << 64) - 1


def unit(seed: int, index: int, salt: int) -> float:
    """A number in [0, 1) that depends only on its arguments (splitmix64 finaliser)."""
    x = (seed * 0x9E3779B97F4A7C15 + index * 0xD1B54A32D192ED03 + salt * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return (x ^ (x >> 31)) / 2.0**64


@functools.lru_cache(maxsize=1 << 16)
def local_hour(timezone: tzinfo, bucket: int) -> tuple[float, bool]:
    """(local hour of day, is it a weekend) at the middle of ``bucket`` - shared by every
    household in the same time zone, which is what makes large fleets cheap."""
    local = datetime.fromtimestamp(bucket * BUCKET_S + BUCKET_S / 2, timezone)
    return local.hour + local.minute / 60.0, local.weekday() >= 5


def _bump(hour: float, centre: float, width: float) -> float:
    return math.exp(-0.5 * ((hour - centre) / width) ** 2)


@dataclass(frozen=True, slots=True)
class Household:
    base_kw: float
    morning_kw: float
    midday_kw: float
    evening_kw: float
    morning_h: float
    evening_h: float
    weekend_delay_h: float
    noise: float
    initial_kwh: float

    @classmethod
    def draw(cls, seed: int) -> Household:
        rng = random.Random(seed)  # noqa: S311 - simulation, not security
        morning_kw = rng.uniform(0.5, 1.0)
        return cls(
            base_kw=rng.uniform(0.10, 0.30),
            morning_kw=morning_kw,
            midday_kw=rng.uniform(0.1, 0.4),
            evening_kw=morning_kw * rng.uniform(1.3, 2.2),
            morning_h=rng.uniform(6.5, 7.75),
            evening_h=rng.uniform(18.5, 20.0),
            weekend_delay_h=rng.uniform(1.0, 2.0),
            noise=0.25,
            initial_kwh=round(rng.uniform(2_000, 40_000), 3),
        )


class ResidentialProfile:
    digits = 6  # the register is reported in mWh: still increasing at one reading a second

    def __init__(self, seed: int, timezone: tzinfo = UTC) -> None:
        self.seed = seed
        self.household = Household.draw(seed)
        self._tz = timezone
        # The last bucket's power: a meter reading more often than every 5 minutes asks for
        # the same bucket again and again, and its power is a pure function of the bucket.
        self._last: tuple[int, float] | None = None

    def initial_register(self) -> float:
        return self.household.initial_kwh

    def power_kw(self, bucket: int) -> float:
        """Mean power over bucket ``bucket`` (epoch seconds // 300)."""
        last = self._last
        if last is not None and last[0] == bucket:
            return last[1]
        power = self._power_kw(bucket)
        self._last = (bucket, power)
        return power

    def _power_kw(self, bucket: int) -> float:
        h = self.household
        hour, weekend = local_hour(self._tz, bucket)
        morning_at = h.morning_h + (h.weekend_delay_h if weekend else 0.0)
        active = (
            h.morning_kw * (0.8 if weekend else 1.0) * _bump(hour, morning_at, 0.9)
            + h.midday_kw * (2.5 if weekend else 1.0) * _bump(hour, 13.0, 1.8)
            + h.evening_kw * (1.15 if weekend else 1.0) * _bump(hour, h.evening_h, 1.5)
        )
        power = (h.base_kw + active) * (1.0 + h.noise * (2.0 * unit(self.seed, bucket, 1) - 1.0))
        chance = 0.01 + 0.05 * min(1.0, active / h.evening_kw)
        if unit(self.seed, bucket, 2) < chance:
            power += 1.0 + 1.5 * unit(self.seed, bucket, 3)
        return power

    def energy_between(self, t0: datetime, t1: datetime) -> float:
        """kWh used from ``t0`` to ``t1`` (0 if ``t1 <= t0``)."""
        s0, s1 = t0.timestamp(), t1.timestamp()
        bucket = math.floor(s0 / BUCKET_S)
        if s1 <= (bucket + 1) * BUCKET_S:  # within one bucket: the loop's result, shorter
            return self.power_kw(bucket) * (s1 - s0) / 3600.0 if s1 > s0 else 0.0
        total = 0.0
        while bucket * BUCKET_S < s1:
            lo = max(s0, bucket * BUCKET_S)
            hi = min(s1, (bucket + 1) * BUCKET_S)
            if hi > lo:
                total += self.power_kw(bucket) * (hi - lo) / 3600.0
            bucket += 1
        return total
