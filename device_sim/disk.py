"""Buffer files for a whole fleet, written by one background thread.

A meter's buffer syncs (write + fsync) every few records; for thousands of meters on one event
loop those fsyncs would stall the network. ``BackgroundRecordStore`` hands its writes to a
``DiskWriter`` thread instead, which keeps each file's writes in order. The durability promise
is the meter's (a reading is published whether or not its record is on disk yet); what changes
is only who waits for the disk.
"""

from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path

from firmware_stub.storage import append_durably, replace_durably

log = logging.getLogger("device_sim.disk")


class DiskWriter:
    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[bool, Path, bytes] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="ems-sim-disk", daemon=True)
        self._thread.start()
        self.failures = 0

    def submit(self, replace: bool, path: Path, data: bytes) -> None:
        self._queue.put((replace, path, data))

    def close(self, timeout: float = 30.0) -> None:
        """Finish every write submitted so far, then stop the thread."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            replace, path, data = job
            try:
                (replace_durably if replace else append_durably)(path, data)
            except OSError as exc:
                self.failures += 1
                if self.failures == 1:
                    log.error("cannot write meter buffer %s: %s", path, exc.strerror or exc)


class BackgroundRecordStore:
    def __init__(self, path: Path, writer: DiskWriter) -> None:
        self.path = path
        self._writer = writer

    def load(self) -> bytes:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return b""

    def append(self, data: bytes) -> None:
        self._writer.submit(False, self.path, data)

    def replace(self, data: bytes) -> None:
        self._writer.submit(True, self.path, data)
