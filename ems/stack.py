"""`ems up`: the whole stack on one machine, as child processes it supervises: a child that
dies is restarted (ems/supervise.py says when, and when to give up); Ctrl-C stops them all,
newest first."""

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
from ems.service_env import (
    HUB_PREFIX,
    PORTAL_PREFIX,
    compose,
    hub_env,
    inherited,
    overridden,
    portal_env,
)
from ems.supervise import Restarts, deliberate
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
    """A supervised process: ``respawn`` starts it again (for the servers, waiting until they
    accept connections); ``ready`` says when a restarted one serves again."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    respawn: Callable[[], subprocess.Popen[bytes]] | None = None
    ready: Callable[[], bool] | None = None
    restarts: Restarts = field(default_factory=Restarts)
    due: float | None = None  # monotonic time of a pending restart
    starting: bool = False  # restarted, not ready yet


@dataclass
class Stack:
    cfg: StackConfig
    say: Say
    pg: PostgresServer | None = None
    mqtt: MosquittoServer | None = None
    children: list[Child] = field(default_factory=list)
    servers: list[Child] = field(default_factory=list)  # PostgreSQL and Mosquitto, supervised
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
        self.servers.append(self._server_child("PostgreSQL", self.pg))
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
        self.servers.append(self._server_child("Mosquitto", self.mqtt))

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
        ignored = overridden(
            os.environ,
            {
                **hub_env(cfg, 1, self.hub_ports[0], dsn, secrets),
                **portal_env(cfg, 1, self.portal_ports[0], dsn, secrets),
            },
        )
        if ignored:
            self.say(f"      ignoring {', '.join(ignored)}: `ems up` sets these itself")
        for i, port in enumerate(self.hub_ports, start=1):
            env = compose(os.environ, HUB_PREFIX, hub_env(cfg, i, port, dsn, secrets))
            self._spawn(f"hub-{i}", [sys.executable, "-m", "hub"], env, self._health(port))
        for i, port in enumerate(self.portal_ports, start=1):
            env = compose(os.environ, PORTAL_PREFIX, portal_env(cfg, i, port, dsn, secrets))
            self._spawn(f"portal-{i}", [sys.executable, "-m", "portal"], env, self._health(port))
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

    def _server_child(self, name: str, server: PostgresServer | MosquittoServer) -> Child:
        def respawn() -> subprocess.Popen[bytes]:
            # PostgreSQL killed outright leaves postmaster.pid and may find its old shared
            # memory still attached by dying backends: it removes a stale lock file itself,
            # refuses while the memory is in use (a failed start, retried after the back-off)
            # and replays its WAL (crash recovery). Mosquitto reloads its last saved sessions.
            try:
                server.start()
            except StackError:
                if server.proc is not None:  # started but never ready: not left behind
                    stop_process(server.proc, sig=signal.SIGKILL, timeout=10)
                raise
            assert server.proc is not None
            return server.proc

        assert server.proc is not None
        return Child(name, server.proc, server.log_path, respawn)

    def _health(self, port: int) -> Callable[[], bool]:
        return functools.partial(http_ok, f"http://{self.cfg.host}:{port}/health")

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
        child = Child(
            "nginx",
            proxy.popen(log, env),
            log,
            respawn=functools.partial(proxy.popen, log, env),
            ready=self._health(cfg.portal_port),
        )
        self.children.append(child)
        self._wait_healthy(child, cfg.portal_port)

    def _spawn(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        ready: Callable[[], bool] | None = None,
    ) -> Child:
        log = self.cfg.home / "logs" / f"{name}.log"
        respawn = functools.partial(RunAs.current().popen, argv, log=log, env=env)
        child = Child(name, respawn(), log, respawn, ready)
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
        """Block until asked to stop (None) or until the stack cannot carry on (the reason).

        A child that crashes or is killed is restarted after a back-off, until it keeps dying
        (ems/supervise.py). One stopped on purpose (exit 0, SIGTERM) is not: a replica
        (``hub-2``, ``portal-1``…) so stopped is reported once and the others carry on, which
        is what replicas are for; the last of its kind, or a child without replicas, stops
        the stack."""
        gone: set[str] = set()
        while not stop_requested():
            for child in [*self.servers, *self.children]:
                if child.name in gone:
                    continue
                gone_for_good = self._check(child)
                if gone_for_good is None:
                    continue
                reason, on_purpose = gone_for_good
                survivors = self._live_replicas_like(child) if on_purpose else []
                if not survivors:
                    return reason
                gone.add(child.name)
                self.say(f"ems: {reason} — {', '.join(survivors)} carrying on")
            time.sleep(0.2)
        return None

    def _check(self, child: Child) -> tuple[str, bool] | None:
        """Look after one child: restart it when due, announce it once it serves again.
        Returns why it is gone for good, and whether it was stopped on purpose (the caller
        decides whether the stack carries on) rather than dying too often (it does not)."""
        if child.due is not None:
            if time.monotonic() >= child.due:
                return _for_good(self._restart(child))
            return None
        code = child.proc.poll()
        if code is None:
            if child.starting and (child.ready is None or child.ready()):
                child.starting = False
                self.say(f"ems: {child.name} is running again (restarts: {child.restarts.count})")
            return None
        exited = f"{child.name} exited with code {code} (log: {child.log})"
        if deliberate(code) or child.respawn is None:
            return exited, True
        return _for_good(self._died(child, exited))

    def _died(self, child: Child, what: str) -> str | None:
        child.starting = False
        delay = child.restarts.died(time.monotonic())
        if delay is None:
            return (
                f"{what}; {child.name} keeps dying ({child.restarts.give_up_reason()}), giving up"
            )
        child.due = time.monotonic() + delay
        self.say(f"ems: {what} — restarting it in {delay:g} s")
        return None

    def _restart(self, child: Child) -> str | None:
        assert child.respawn is not None
        child.due = None
        child.restarts.count += 1
        try:
            child.proc = child.respawn()
        except (StackError, OSError) as exc:
            first = str(exc).splitlines()[0]
            return self._died(child, f"{child.name} did not start again ({first})")
        child.starting = True
        self.say(f"ems: restarted {child.name} (restart {child.restarts.count})")
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
            self.say(
                f"stopped {child.name}"
                + ("" if clean else f" (exit code {code})")
                + _restarted(child)
            )
        self.children.clear()
        restarted = {child.name: _restarted(child) for child in self.servers}
        if self.mqtt is not None:
            self.mqtt.stop()
            self.say("stopped Mosquitto" + restarted.get("Mosquitto", ""))
        if self.pg is not None:
            self.pg.stop()
            self.say("stopped PostgreSQL" + restarted.get("PostgreSQL", ""))


def _for_good(gave_up: str | None) -> tuple[str, bool] | None:
    return None if gave_up is None else (gave_up, False)


def _restarted(child: Child) -> str:
    n = child.restarts.count
    return f" (restarted {n} time{'s' if n != 1 else ''})" if n else ""


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
