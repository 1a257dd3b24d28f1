"""A real portal process (`python -m portal`, uvicorn) on a free loopback port.

Shared by the browser tests (tests/e2e/conftest.py) and the API fuzz test, which both need the
portal served over real HTTP exactly as in production.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from devkit.helpers import wait_for
from ems.procs import free_port
from portal.settings import PortalSettings


def portal_environment(settings: PortalSettings, port: int) -> dict[str, str]:
    return {
        "PORTAL_DATABASE_URL": settings.database_url,
        "PORTAL_JWT_SECRET": settings.jwt_secret,
        "PORTAL_MQTT_USERNAME": settings.mqtt_username,
        "PORTAL_MQTT_PASSWORD": settings.mqtt_password,
        "PORTAL_MQTT_HOST": settings.mqtt_host,
        "PORTAL_MQTT_PORT": str(settings.mqtt_port),
        "PORTAL_HTTP_HOST": "127.0.0.1",
        "PORTAL_HTTP_PORT": str(port),
        "PORTAL_ALLOW_REGISTRATION": "true" if settings.allow_registration else "false",
        "PORTAL_TRUSTED_PROXIES": ",".join(settings.trusted_proxies),
        "PORTAL_LOGIN_BACKOFF_S": str(settings.login_backoff_s),
        "PORTAL_LOGIN_ADDRESS_MAX_FAILURES": str(settings.login_address_max_failures),
    }


class LivePortal:
    """``with LivePortal(settings, log) as portal: portal.url …`` — stopped on exit."""

    def __init__(self, settings: PortalSettings, log_file: Path) -> None:
        self.settings = settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_file = log_file
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The portal process's id (benchmarks measure its CPU time)."""
        assert self._proc is not None, "the portal is not running"
        return self._proc.pid

    def _healthy(self) -> bool:
        if self._proc is not None and self._proc.poll() is not None:
            raise AssertionError(f"the portal exited; its log:\n{self.log_file.read_text()}")
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1) as response:  # noqa: S310
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def __enter__(self) -> LivePortal:
        env = {**os.environ, **portal_environment(self.settings, self.port)}
        with self.log_file.open("wb") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "portal"], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            # 60 s: a portal starts in about 2 s, but on a loaded 2-core machine (a test run
            # beside other work) its imports alone took more than 30.
            wait_for(self._healthy, timeout=60, what=f"the portal at {self.url}")
        except BaseException:
            self._stop()  # a portal that never became healthy must not outlive the test
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
