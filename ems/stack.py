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
from ems.broker import HUB_USER, PORTAL_USER, MosquittoServer
from ems.config import StackConfig, load_or_create_secrets
from ems.postgres import PostgresServer
from ems.procs import RunAs, StackError, ensure_port_free, stop_process, wait_until
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

    @property
    def portal_url(self) -> str:
        return f"http://{self.cfg.host}:{self.cfg.portal_port}"

    def _step(self, n: int, total: int, text: str) -> None:
        self.say(f"[{n}/{total}] {text}")

    def start(self) -> None:
        cfg = self.cfg
        total = 6 if cfg.demo else 5
        secrets = load_or_create_secrets(cfg.home)
        run_as = RunAs.detect()
        hub_ports = [cfg.hub_port + i for i in range(cfg.replicas)]
        portal_ports = [cfg.portal_port + 10 * i for i in range(cfg.replicas)]
        for port, what in [
            (cfg.pg_port, "PostgreSQL"),
            (cfg.mqtt_port, "Mosquitto"),
            *[(p, "the hub") for p in hub_ports],
            *[(p, "the portal") for p in portal_ports],
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

        self._step(5, total, f"hub ×{cfg.replicas} and portal ×{cfg.replicas}")
        base_env = {k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "PORTAL_"))}
        for i, port in enumerate(hub_ports, start=1):
            env = {
                **base_env,
                "HUB_DATABASE_URL": dsn,
                "HUB_MQTT_HOST": cfg.host,
                "HUB_MQTT_PORT": str(cfg.mqtt_port),
                "HUB_MQTT_USERNAME": HUB_USER,
                "HUB_MQTT_PASSWORD": secrets["hub_mqtt_password"],
                "HUB_CLIENT_ID": f"ems-hub-{i}",
                "HUB_HTTP_HOST": cfg.host,
                "HUB_HTTP_PORT": str(port),
            }
            self._spawn(f"hub-{i}", [sys.executable, "-m", "hub"], env)
        for i, port in enumerate(portal_ports, start=1):
            env = {
                **base_env,
                "PORTAL_DATABASE_URL": dsn,
                "PORTAL_JWT_SECRET": secrets["jwt_secret"],
                "PORTAL_MQTT_HOST": cfg.host,
                "PORTAL_MQTT_PORT": str(cfg.mqtt_port),
                "PORTAL_MQTT_USERNAME": PORTAL_USER,
                "PORTAL_MQTT_PASSWORD": secrets["portal_mqtt_password"],
                "PORTAL_HTTP_HOST": cfg.host,
                "PORTAL_HTTP_PORT": str(port),
                "PORTAL_INSTANCE_ID": f"portal-{i}",
            }
            self._spawn(f"portal-{i}", [sys.executable, "-m", "portal"], env)
        for child, port in zip(self.children, [*hub_ports, *portal_ports], strict=True):
            health_url = f"http://{cfg.host}:{port}/health"
            wait_until(
                functools.partial(http_ok, health_url),
                timeout=60,
                what=f"{child.name} (GET /health on port {port})",
                proc=child.proc,
                log=child.log,
            )
        if cfg.demo:
            self._step(6, total, f"demo fleet of {cfg.demo_meters} simulated meters")
            from ems.demo import start_demo

            start_demo(self, secrets)

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> Child:
        log = self.cfg.home / "logs" / f"{name}.log"
        proc = RunAs.current().popen(argv, log=log, env=env)
        child = Child(name, proc, log)
        self.children.append(child)
        return child

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> Child:
        return self._spawn(name, argv, env)

    def banner(self) -> str:
        lines = [
            "",
            f"EMS is running — portal: {self.portal_url}",
            f"  hub health: http://{self.cfg.host}:{self.cfg.hub_port}/health",
            f"  MQTT broker: {self.cfg.host}:{self.cfg.mqtt_port} (authenticated only)",
            f"  data and logs: {self.cfg.home}",
            "  logins:",
        ]
        lines += [f"    {u:<16} {p:<24} {what}" for u, p, what in self.logins]
        lines.append("Press Ctrl-C to stop everything.")
        return "\n".join(lines)

    def watch(self, stop_requested: Callable[[], bool]) -> str | None:
        """Block until asked to stop or a child dies; return the reason a child died."""
        while not stop_requested():
            for child in self.children:
                if child.proc.poll() is not None:
                    return (
                        f"{child.name} exited with code {child.proc.returncode} (log: {child.log})"
                    )
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

    def stop(self) -> None:
        """Reverse order: simulators and portals first, then hubs (they drain), then servers."""
        for child in reversed(self.children):
            code = stop_process(child.proc, sig=signal.SIGTERM, timeout=30)
            self.say(f"stopped {child.name} ({code})")
        self.children.clear()
        if self.mqtt is not None:
            self.mqtt.stop()
            self.say("stopped Mosquitto")
        if self.pg is not None:
            self.pg.stop()
            self.say("stopped PostgreSQL")


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
