"""The store-and-forward file format: fixed-size, checksummed records.

Every record is 40 bytes, little-endian::

    offset  size  field
    0       4     CRC-32 of bytes 4..39
    4       1     kind: 1 reading, 2 ack, 3 meta
    5       3     zero padding
    8       8     int64   reading: seq          ack: acknowledged through seq   meta: next seq
    16      8     int64   reading: ts (epoch ms)                                 meta: dropped
    24      8     float64 reading: energy_kwh
    32      8     float64 reading: power_w (NaN when absent)

Fixed-size records make the file trivial to scan on a device, and the checksum lets a reader
stop at a record torn by a power cut. The in-memory copy of a reading is its record, too.
"""

from __future__ import annotations

import math
import struct
import zlib
from datetime import UTC, datetime, timedelta
from typing import Final, NamedTuple

import msgspec

RECORD_SIZE: Final = 40
READING: Final = 1
ACK: Final = 2
META: Final = 3

_CRC = struct.Struct("<I")
_BODY = struct.Struct("<B3xqqdd")
_SEQ = struct.Struct("<q")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)


class Record(NamedTuple):
    kind: int
    a: int
    b: int
    c: float
    d: float


class StoredReading(msgspec.Struct, frozen=True, gc=False):
    """A reading as the buffer holds it. A frozen struct rather than a frozen dataclass: one
    is built per reading sent, and this costs a tenth of the dataclass's construction."""

    seq: int
    ts_ms: int
    energy_kwh: float
    power_w: float | None

    @property
    def ts(self) -> datetime:
        return _EPOCH + self.ts_ms * _MS


def to_ms(ts: datetime) -> int:
    if ts.utcoffset() is None:
        raise ValueError("timestamp must be timezone-aware")
    return (ts - _EPOCH) // _MS


def pack(kind: int, a: int, b: int = 0, c: float = 0.0, d: float = 0.0) -> bytes:
    body = _BODY.pack(kind, a, b, c, d)
    return _CRC.pack(zlib.crc32(body)) + body


def pack_reading(seq: int, ts_ms: int, energy_kwh: float, power_w: float | None) -> bytes:
    return pack(READING, seq, ts_ms, energy_kwh, math.nan if power_w is None else power_w)


def seq_of(record: bytes) -> int:
    """The seq of a reading record (the ``a`` field), without a full decode."""
    return int(_SEQ.unpack_from(record, 8)[0])


def decode_reading(record: bytes) -> StoredReading:
    _kind, seq, ts_ms, energy, power = _BODY.unpack_from(record, 4)
    return StoredReading(seq, ts_ms, energy, None if math.isnan(power) else power)


def scan(data: bytes) -> tuple[list[tuple[Record, bytes]], int]:
    """Records from the start of ``data`` up to the first damaged one, and the length of that
    valid prefix (a torn last write is cut off there)."""
    out: list[tuple[Record, bytes]] = []
    end = len(data) - len(data) % RECORD_SIZE
    pos = 0
    while pos < end:
        raw = data[pos : pos + RECORD_SIZE]
        if _CRC.unpack_from(raw)[0] != zlib.crc32(raw[4:]):
            break
        record = Record(*_BODY.unpack_from(raw, 4))
        if record.kind not in (READING, ACK, META):
            break
        out.append((record, bytes(raw)))
        pos += RECORD_SIZE
    return out, pos
