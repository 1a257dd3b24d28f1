"""Test kit for `ems up` run as a user runs it: a subprocess, its output, its processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ems.procs import free_port
from tests.helpers import wait_for

ADMIN_PASSWORD = "admin-password-1"


def stack_ports() -> dict[str, int]:
    return {"pg": free_port(), "mqtt": free_port(), "hub": free_port(), "portal": free_port()}


def start_stack(home: Path, ports: dict[str, int], *extra: str) -> subprocess.Popen[str]:
    """``ems up`` as a user runs it, with its state in ``home`` and the administrator
    ``admin`` / ``ADMIN_PASSWORD``; read its output with ``read_until``."""
    env = {
        **os.environ,
        "EMS_HOME": str(home),
        "EMS_PG_PORT": str(ports["pg"]),
        "EMS_MQTT_PORT": str(ports["mqtt"]),
        "EMS_HUB_PORT": str(ports["hub"]),
        "EMS_PORTAL_PORT": str(ports["portal"]),
        "EMS_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "PYTHONUNBUFFERED": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "ems", "up", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def processes_mentioning(text: str) -> list[str]:
    """Processes whose command line or environment mentions ``text`` (e.g. an EMS_HOME)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (entry / "environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if text in cmdline or text in environ:
            found.append(f"{entry.name}: {cmdline[:120]}")
    return found


def read_until(proc: subprocess.Popen[str], marker: str, timeout: float = 120) -> str:
    """Read ``proc``'s output until a line contains ``marker``; fail with what it printed."""
    assert proc.stdout is not None
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"{marker!r} not printed; output:\n{''.join(seen)}")


def stop_stack(
    proc: subprocess.Popen[str], home: Path, sig: int = signal.SIGINT, timeout: float = 90
) -> str:
    """Ctrl-C (or ``sig``) as a user would: ``ems up`` exits 0, says so, leaves no process
    behind and no child with a failing exit code. Returns what it printed while stopping."""
    proc.send_signal(sig)
    rest, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, rest
    assert "all stopped" in rest, rest
    assert "exit code" not in rest, rest
    wait_for(
        lambda: not processes_mentioning(str(home)), timeout=10, what="every child process to exit"
    )
    return rest


def kill_stack(proc: subprocess.Popen[str]) -> None:
    """After a failed test: nothing of it keeps running."""
    if proc.poll() is None:
        proc.kill()
        proc.communicate()
