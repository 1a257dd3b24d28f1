"""Where the buffer's records live: an append-only file, or memory.

A device implements ``RecordStore`` over its flash: ``append`` is an append plus a flush to
stable storage, ``replace`` an atomic rewrite (write a new file, then rename over the old one).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Protocol


class RecordStore(Protocol):
    def load(self) -> bytes:
        """Everything stored so far (empty if nothing)."""
        ...

    def append(self, data: bytes) -> None:
        """Append and make durable (fsync) before returning."""
        ...

    def replace(self, data: bytes) -> None:
        """Atomically replace the whole content (compaction, or cutting a torn tail)."""
        ...


def _fsync_dir(path: Path) -> None:
    # A new or renamed file is durable only once its directory entry is.
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def append_durably(path: Path, data: bytes) -> None:
    existed = path.exists()
    # The file is opened per batch, not kept open: a fleet of 10,000 meters would otherwise
    # hold 10,000 descriptors on top of its sockets.
    with path.open("ab") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    if not existed:
        _fsync_dir(path.parent)


def replace_durably(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class FileRecordStore:
    """One small append-only file per meter."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> bytes:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return b""

    def append(self, data: bytes) -> None:
        append_durably(self.path, data)

    def replace(self, data: bytes) -> None:
        replace_durably(self.path, data)


class MemoryRecordStore:
    """Records in memory: survives a re-open of the buffer within one process (tests, and
    simulations that need no persistence)."""

    def __init__(self, data: bytes = b"") -> None:
        self.data = bytearray(data)
        self.appends = 0

    def load(self) -> bytes:
        return bytes(self.data)

    def append(self, data: bytes) -> None:
        self.data += data
        self.appends += 1

    def replace(self, data: bytes) -> None:
        self.data = bytearray(data)
