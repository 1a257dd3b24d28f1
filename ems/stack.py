"""`ems up`: the whole stack on one machine, as child processes, stopped cleanly together."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from ems import admin
from ems.broker import MosquittoServer
from ems.config import StackConfig, load_or_create_secrets
from ems.nginx import NginxProxy
from ems.postgres import PostgresServer
from ems.procs import RunAs, StackError, ensure_port_free, free_port, stop_process, wait_until
from ems.service_env import hub_env, inherited, portal_env
from migrations.runner import migrate

Say = Callable[[str], None]


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - our own loopback URL
            return int(resp.status) == 200
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path


@dataclass
class Stack:
    cfg: StackConfig
    say: Say
    pg: PostgresServer | None = None
    mqtt: MosquittoServer | None = None
    children: list[Child] = field(default_factory=list)
    logins: list[tuple[str, str, str]] = field(default_factory=list)
    hub_ports: list[int] = field(default_factory=list)
    portal_ports: list[int] = field(default_factory=list)

    @property
    def portal_url(self) -> str:
        """The portal, or with replicas the nginx in front of them (EMS_PORTAL_PORT either way)."""
        return f"http://{self.cfg.host}:{self.cfg.portal_port}"

    def _plan_ports(self) -> None:
        """Hubs on EMS_HUB_PORT, +1, …; with N > 1 portals, nginx takes EMS_PORTAL_PORT and the
        portals take free ports of the kernel's choosing (only nginx talks to them)."""
        cfg = self.cfg
        self.hub_ports = [cfg.hub_port + i for i in range(cfg.replicas)]
        self.portal_ports = [cfg.portal_port]
        if cfg.replicas > 1:
            taken = {cfg.pg_port, cfg.mqtt_port, cfg.portal_port, *self.hub_ports}
            self.portal_ports = []
            while len(self.portal_ports) < cfg.replicas:
                port = free_port(cfg.host)
                if port not in taken:
                    taken.add(port)
                    self.portal_ports.append(port)

    def _step(self, n: int, total: int, text: str) -> None:
        self.say(f"[{n}/{total}] {text}")

    def start(self) -> None:
        cfg = self.cfg
        total = 6 if cfg.demo else 5
        secrets = load_or_create_secrets(cfg.home)
        run_as = RunAs.detect()
        self._plan_ports()
        for port, what in [
            (cfg.pg_port, "PostgreSQL"),
            (cfg.mqtt_port, "Mosquitto"),
            *[(p, "the hub") for p in self.hub_ports],
            (cfg.portal_port, "the portal" if cfg.replicas == 1 else "nginx (the portals' proxy)"),
        ]:
            ensure_port_free(port, what, cfg.host)
        (cfg.home / "logs").mkdir(parents=True, exist_ok=True)

        servers_home = run_as.server_dir(cfg.home)
        if servers_home != cfg.home:
            self.say(
                f"      {run_as.user} cannot reach {cfg.home}; server data goes to {servers_home}"
            )
        self.pg = PostgresServer(
            servers_home / "pg" / "data", cfg.pg_port, secrets["pg_password"], run_as
        )
        created = self.pg.init()
        self._step(
            1,
            total,
            f"PostgreSQL {'initialised and ' if created else ''}starting on port {cfg.pg_port}",
        )
        self.pg.start()
        self.pg.create_database("ems")
        dsn = self.pg.dsn("ems")

        self._step(2, total, "applying migrations")
        applied = migrate(dsn, progress=lambda m: self.say("      " + m))
        if not applied:
            self.say("      schema is up to date")

        self._step(3, total, f"Mosquitto starting on port {cfg.mqtt_port}")
        self.mqtt = MosquittoServer(
            servers_home / "mosquitto",
            cfg.mqtt_port,
            secrets["hub_mqtt_password"],
            secrets["portal_mqtt_password"],
            run_as,
            hubs=cfg.replicas,
            portals=cfg.replicas,
        )
        self.mqtt.start()

        self._step(4, total, "administrator")
        result = admin.ensure_admin(dsn, "admin", os.environ.get("EMS_ADMIN_PASSWORD") or None)
        if result.created and result.password:
            self.logins.append(("admin", result.password, "administrator (generated; shown once)"))
        elif result.created:
            self.logins.append(("admin", "(EMS_ADMIN_PASSWORD)", "administrator"))
        else:
            self.logins.append(
                ("admin", "(unchanged)", "administrator — reset: ems admin create --reset")
            )

        self._step(5, total, self._services_line())
        base_env = inherited(os.environ)
        for i, port in enumerate(self.hub_ports, start=1):
            env = {**base_env, **hub_env(cfg, i, port, dsn, secrets)}
            self._spawn(f"hub-{i}", [sys.executable, "-m", "hub"], env)
        for i, port in enumerate(self.portal_ports, start=1):
            env = {**base_env, **portal_env(cfg, i, port, dsn, secrets)}
            self._spawn(f"portal-{i}", [sys.executable, "-m", "portal"], env)
        for child, port in zip(self.children, [*self.hub_ports, *self.portal_ports], strict=True):
            self._wait_healthy(child, port)
        if cfg.replicas > 1:
            self._start_proxy(servers_home / "nginx", run_as, base_env)
        if cfg.demo:
            self._step(6, total, f"demo fleet of {cfg.demo_meters} simulated meters")
            from ems.demo import start_demo

            start_demo(self, secrets)

    def _services_line(self) -> str:
        n = self.cfg.replicas
        if n == 1:
            return "hub and portal"
        return f"hub ×{n}, portal ×{n} and nginx in front of the portals"

    def _wait_healthy(self, child: Child, port: int) -> None:
        wait_until(
            functools.partial(http_ok, f"http://{self.cfg.host}:{port}/health"),
            timeout=60,
            what=f"{child.name} (GET /health on port {port})",
            proc=child.proc,
            log=child.log,
        )

    def _start_proxy(self, base_dir: Path, run_as: RunAs, env: dict[str, str]) -> None:
        cfg = self.cfg
        proxy = NginxProxy(
            base_dir,
            cfg.portal_port,
            [f"{cfg.host}:{p}" for p in self.portal_ports],
            run_as,
            host=cfg.host,
        )
        proxy.prepare()
        log = cfg.home / "logs" / "nginx.log"
        # Started last, so reversed() in stop() closes the front door first.
        child = Child("nginx", proxy.popen(log, env), log)
        self.children.append(child)
        self._wait_healthy(child, cfg.portal_port)

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> Child:
        log = self.cfg.home / "logs" / f"{name}.log"
        proc = RunAs.current().popen(argv, log=log, env=env)
        child = Child(name, proc, log)
        self.children.append(child)
        return child

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> Child:
        return self._spawn(name, argv, env)

    def banner(self) -> str:
        host = self.cfg.host
        lines = [
            "",
            f"EMS is running — portal: {self.portal_url}"
            + (f" (nginx → {len(self.portal_ports)} portals)" if self.cfg.replicas > 1 else ""),
            *[f"  hub health: http://{host}:{p}/health" for p in self.hub_ports],
        ]
        if self.cfg.replicas > 1:
            lines += [f"  portal replica: http://{host}:{p}" for p in self.portal_ports]
        lines += [
            f"  MQTT broker: {self.cfg.host}:{self.cfg.mqtt_port} (authenticated only)",
            f"  data and logs: {self.cfg.home}",
            "  logins:",
        ]
        lines += [f"    {u:<16} {p:<24} {what}" for u, p, what in self.logins]
        lines.append("Press Ctrl-C to stop everything.")
        return "\n".join(lines)

    def watch(self, stop_requested: Callable[[], bool]) -> str | None:
        """Block until asked to stop or a child dies; return the reason a child died.

        A replica (``hub-2``, ``portal-1``…) that exits while another of its kind still runs
        is reported once and the stack carries on: surviving the loss of one is what the
        replicas are for (nginx sends its browsers to the others)."""
        gone: set[str] = set()
        while not stop_requested():
            for child in self.children:
                if child.name in gone or child.proc.poll() is None:
                    continue
                reason = f"{child.name} exited with code {child.proc.returncode} (log: {child.log})"
                survivors = self._live_replicas_like(child)
                if not survivors:
                    return reason
                gone.add(child.name)
                self.say(f"ems: {reason} — {', '.join(survivors)} carrying on")
            for name, server in (("PostgreSQL", self.pg), ("Mosquitto", self.mqtt)):
                if (
                    server is not None
                    and server.proc is not None
                    and server.proc.poll() is not None
                ):
                    return (
                        f"{name} exited with code {server.proc.returncode} (log: {server.log_path})"
                    )
            time.sleep(0.2)
        return None

    def _live_replicas_like(self, child: Child) -> list[str]:
        """The other running replicas of ``child``'s kind (``portal-2`` for ``portal-1``)."""
        kind = _replica_kind(child.name)
        if kind is None:
            return []
        return [
            c.name
            for c in self.children
            if c is not child and _replica_kind(c.name) == kind and c.proc.poll() is None
        ]

    def stop(self) -> None:
        """Newest first: simulators, nginx, portals, hubs (they drain), then the servers."""
        for child in reversed(self.children):
            code = stop_process(child.proc, sig=signal.SIGTERM, timeout=30)
            # uvicorn re-raises the SIGTERM it handled once it has shut down cleanly.
            clean = code in (0, -signal.SIGTERM)
            self.say(f"stopped {child.name}" + ("" if clean else f" (exit code {code})"))
        self.children.clear()
        if self.mqtt is not None:
            self.mqtt.stop()
            self.say("stopped Mosquitto")
        if self.pg is not None:
            self.pg.stop()
            self.say("stopped PostgreSQL")


def _replica_kind(name: str) -> str | None:
    """``"portal"`` for ``"portal-2"``; None for a child that is not one of N replicas."""
    kind, _, number = name.rpartition("-")
    return kind if kind and number.isdigit() else None


def up(cfg: StackConfig, say: Say = print) -> int:
    stack = Stack(cfg, say)
    stopping = {"flag": False}

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stopping["flag"]:
            return
        stopping["flag"] = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    died: str | None = None
    try:
        stack.start()
        say(stack.banner())
        died = stack.watch(lambda: stopping["flag"])
        if died:
            say(f"ems: {died} — stopping the stack")
    except KeyboardInterrupt:
        say("\nstopping…")
    except StackError as exc:
        say(f"ems: {exc}")
        died = str(exc)
    finally:
        # Once stopping, further Ctrl-C presses must not interrupt the orderly shutdown.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
        say("all stopped")
    return 1 if died else 0
