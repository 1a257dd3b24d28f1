"""CSV export, streamed: rows leave as the database cursor yields them, a chunk at a time.

Columns (one header line, comma-separated, RFC 4180 quoting):

- ``kind=hourly``:   device_id, hour_start, hour_end, energy, unit, quality, readings — every
  hour of the range, hours without data as an empty ``energy`` with quality ``missing``.
- ``kind=readings``: device_id, ts, energy, unit, quality, power_w, seq — ``energy`` is the
  meter's cumulative register; a raw reading is a measurement, so its quality is ``measured``.

Timestamps are ISO-8601 in the user's time zone with its offset; ``unit`` is ``kWh``. Numbers
are written as the API returns them (shortest round-trip form).
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal.dashboards.stored import HOURS, READINGS
from portal.dashboards.timeframe import HOUR, InstantRange, ceil_hour

ExportKind = Literal["hourly", "readings"]
CHUNK_ROWS = 500
HEADERS: dict[str, list[str]] = {
    "hourly": ["device_id", "hour_start", "hour_end", "energy", "unit", "quality", "readings"],
    "readings": ["device_id", "ts", "energy", "unit", "quality", "power_w", "seq"],
}


def _number(value: float | int | None) -> str:
    return "" if value is None else repr(value)


class CsvExport:
    """One export: ``rows()`` is the response body, read with its own database session
    (the request's session is closed once the handler returns, before the body is sent)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        device_id: uuid.UUID,
        kind: ExportKind,
        span: InstantRange,
        tz: ZoneInfo,
    ) -> None:
        self.sessions = sessions
        self.device_id = device_id
        self.kind = kind
        self.span = span
        self.tz = tz

    def filename(self) -> str:
        first = self.span.start.astimezone(self.tz).date()
        last = (self.span.end - timedelta(microseconds=1)).astimezone(self.tz).date()
        return f"ems-{self.device_id}-{self.kind}-{first}-{last}.csv"

    async def rows(self) -> AsyncIterator[bytes]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(HEADERS[self.kind])
        async with self.sessions() as session:
            produce = self._hourly if self.kind == "hourly" else self._readings
            async for lines in produce(session):
                writer.writerows(lines)
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
        if buffer.tell():
            yield buffer.getvalue().encode()

    async def _stream(
        self, session: AsyncSession, statement: Any, lo: datetime, hi: datetime
    ) -> AsyncIterator[list[Any]]:
        params = {"device_id": self.device_id, "lo": lo, "hi": hi}
        result = await session.stream(statement.execution_options(yield_per=CHUNK_ROWS), params)
        async for partition in result.partitions():
            yield list(partition)

    async def _readings(self, session: AsyncSession) -> AsyncIterator[Iterable[list[str]]]:
        device = str(self.device_id)
        async for rows in self._stream(session, READINGS, self.span.start, self.span.end):
            yield (
                [
                    device,
                    r.ts.astimezone(self.tz).isoformat(),
                    _number(r.energy_kwh),
                    "kWh",
                    "measured",
                    _number(r.power_w),
                    _number(r.seq),
                ]
                for r in rows
            )

    async def _hourly(self, session: AsyncSession) -> AsyncIterator[Iterable[list[str]]]:
        """Walks the range hour by hour beside the (ordered) stored rows: a merge, so the
        missing hours come out in place without holding the range in memory."""
        lo, hi = ceil_hour(self.span.start), ceil_hour(self.span.end)
        hour = lo
        async for rows in self._stream(session, HOURS, lo, hi):
            lines: list[list[str]] = []
            for row in rows:
                stored = row.hour
                while hour < stored:
                    lines.append(self._hour_line(hour, None))
                    hour += HOUR
                lines.append(self._hour_line(hour, row))
                hour += HOUR
            yield lines
        tail: list[list[str]] = []
        while hour < hi:
            tail.append(self._hour_line(hour, None))
            hour += HOUR
            if len(tail) >= CHUNK_ROWS:
                yield tail
                tail = []
        yield tail

    def _hour_line(self, hour: datetime, row: Any | None) -> list[str]:
        start, end = hour.astimezone(self.tz).isoformat(), (hour + HOUR).astimezone(self.tz)
        if row is None:
            return [str(self.device_id), start, end.isoformat(), "", "kWh", "missing", "0"]
        return [
            str(self.device_id),
            start,
            end.isoformat(),
            _number(row.energy_kwh),
            "kWh",
            row.quality,
            str(row.readings),
        ]
