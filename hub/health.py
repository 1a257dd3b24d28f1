"""What /health says about the database and the broker: probed beside the hub, read for free.

The writers' state alone is blind to a hang: a writer waiting on a frozen PostgreSQL has not
failed yet, so during a 20 s freeze /health said ``"database": "ok"`` while 28,641 messages
waited; a frozen Mosquitto keeps its TCP connections open, and the keepalive notices after 45 s.
So a monitor thread probes both every ``interval_s`` and /health reads when each last answered
(no I/O per request). A dependency that has not answered for ``stale_after_s`` is unavailable:
that holds whether its probe fails, times out or hangs beyond its own timeouts.

* Database: a new connection per probe, with a connect timeout and a statement timeout on its
  ``SELECT 1``. (A hung postmaster takes no new connection while open ones may still answer.)
* Broker: a PINGREQ whenever nothing has come from it for ``interval_s``; the PINGRESP, or any
  other packet, is its answer (``BrokerAdapter.last_rx``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import psycopg

from hub.mqtt.adapter import BrokerAdapter

log = logging.getLogger("hub.health")

PROBE_INTERVAL_S = 1.0
# Within the 5 s /health promises: the last answer before a hang is at most one interval old.
STALE_AFTER_S = 3.0
PROBE_TIMEOUT_S = 2  # libpq's smallest connect timeout


class HealthMonitor:
    def __init__(
        self,
        dsn: str,
        wire: BrokerAdapter,
        *,
        interval_s: float = PROBE_INTERVAL_S,
        stale_after_s: float = STALE_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._dsn = dsn
        self._wire = wire
        self.interval_s = interval_s
        self.stale_after_s = stale_after_s
        self._clock = clock
        # Until the first probe, start-up counts as an answer (the writers' state speaks).
        self._db_answered = clock()
        self._db_failing = False

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self._wire.ping(idle_s=self.interval_s)
            self.probe_database()
            stop.wait(self.interval_s)

    def probe_database(self) -> None:
        try:
            with psycopg.connect(
                self._dsn,
                autocommit=True,
                connect_timeout=PROBE_TIMEOUT_S,
                options=f"-c statement_timeout={PROBE_TIMEOUT_S * 1000}",
            ) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            if not self._db_failing:  # one line per outage; the message names no secret
                reason = str(exc).strip().splitlines()[0][:200] if str(exc) else type(exc).__name__
                log.warning("database health probe failed (%s)", reason)
            self._db_failing = True
            return
        if self._db_failing:
            log.info("database health probe answers again")
        self._db_failing = False
        self._db_answered = self._clock()

    def database_ok(self) -> bool:
        return self._clock() - self._db_answered <= self.stale_after_s

    def broker_ok(self) -> bool:
        """Connected, and the broker has sent something (a PINGRESP at least) lately."""
        return (
            self._wire.connected.is_set()
            and self._clock() - self._wire.last_rx <= self.stale_after_s
        )
