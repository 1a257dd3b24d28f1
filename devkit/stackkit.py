"""Test kit for `ems up` run as a user runs it: a subprocess, its output, its processes."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from devkit.helpers import wait_for
from ems.broker import ADMIN_USER
from ems.procs import free_port

ADMIN_PASSWORD = "admin-password-1"  # of the administrator `admin` in the tests' stacks


def consecutive_free_ports(n: int) -> int:
    """A port p such that p .. p+n-1 are all free (the hubs take EMS_HUB_PORT + i)."""
    for _ in range(100):
        base = free_port()
        if base + n > 65535:
            continue
        try:
            for k in range(1, n):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", base + k))
        except OSError:
            continue
        return base
    raise AssertionError("no run of free ports")


@dataclass(frozen=True, slots=True)
class StackPorts:
    """Where one `ems up` listens; with N replicas the hubs take hub .. hub+N-1 and nginx
    takes ``portal`` (the portal replicas get ports of their own choosing)."""

    pg: int
    mqtt: int
    hub: int
    portal: int

    @classmethod
    def free(cls, replicas: int = 1) -> StackPorts:
        return cls(free_port(), free_port(), consecutive_free_ports(replicas), free_port())

    @property
    def portal_url(self) -> str:
        return f"http://127.0.0.1:{self.portal}"


def start_stack(
    home: Path,
    ports: StackPorts,
    *args: str,
    admin_password: str,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[str]:
    """`python -m ems up ARGS` with its data in ``home`` (and ``env`` added to its environment);
    read its output with read_until."""
    env = {
        **(env or {}),
        **os.environ,
        "EMS_HOME": str(home),
        "EMS_PG_PORT": str(ports.pg),
        "EMS_MQTT_PORT": str(ports.mqtt),
        "EMS_HUB_PORT": str(ports.hub),
        "EMS_PORTAL_PORT": str(ports.portal),
        "EMS_ADMIN_PASSWORD": admin_password,
        "PYTHONUNBUFFERED": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "ems", "up", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def stack_secrets(home: Path) -> dict[str, str]:
    """The secrets `ems up` generated (PostgreSQL and service passwords)."""
    secrets: dict[str, str] = json.loads((home / "secrets.json").read_text())
    return secrets


def stack_dsn(home: Path, ports: StackPorts) -> str:
    return f"postgresql://ems:{stack_secrets(home)['pg_password']}@127.0.0.1:{ports.pg}/ems"


def stack_broker(home: Path, ports: StackPorts) -> SimpleNamespace:
    """The stack's Mosquitto as the operator tools' account sees it (what create_gateway needs
    to add a test publisher; the running portals hold their own accounts' client ids)."""
    return SimpleNamespace(
        host="127.0.0.1",
        port=ports.mqtt,
        admin_user=ADMIN_USER,
        portal_password=stack_secrets(home)["portal_mqtt_password"],
    )


def child_pid(home: Path, assignment: str) -> int:
    """The one process of the stack in ``home`` whose environment holds ``assignment``, e.g.
    ``PORTAL_INSTANCE_ID=portal-2`` (each child gets the supervisor's EMS_HOME)."""
    wanted = {f"EMS_HOME={home}".encode(), assignment.encode()}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = set((entry / "environ").read_bytes().split(b"\0"))
        except OSError:
            continue
        if wanted <= environ:
            found.append(int(entry.name))
    assert len(found) == 1, f"processes with {assignment} under {home}: {found}"
    return found[0]


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
    proc: subprocess.Popen[str],
    home: Path,
    sig: int = signal.SIGINT,
    timeout: float = 90,
    exited: Collection[str] = (),
) -> str:
    """Ctrl-C (or ``sig``) as a user would: ``ems up`` exits 0, says so, leaves no process
    behind and no child with a failing exit code. Returns what it printed while stopping
    (and since the last read_until).

    ``exited``: replicas the test stopped on purpose (SIGTERM) while the stack ran. Exactly
    those must have been reported as gone, with the others carrying on, and each must have
    exited cleanly (0, or uvicorn re-raising the SIGTERM it handled)."""
    proc.send_signal(sig)
    rest, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, rest
    assert "all stopped" in rest, rest
    assert "exit code" not in rest, rest
    gone = re.findall(r"^ems: (\S+) exited with code (-?\d+) .* carrying on$", rest, re.MULTILINE)
    assert sorted(name for name, _ in gone) == sorted(exited), rest
    assert all(int(code) in (0, -signal.SIGTERM) for _, code in gone), rest
    wait_for(
        lambda: not processes_mentioning(str(home)), timeout=10, what="every child process to exit"
    )
    return rest


def kill_stack(proc: subprocess.Popen[str]) -> None:
    """After a failed test: nothing of it keeps running."""
    if proc.poll() is None:
        proc.kill()
        proc.communicate()
