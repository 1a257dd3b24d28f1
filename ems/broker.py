"""A private Mosquitto broker: rendered configuration, dynamic-security bootstrap, child process."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

from ems.procs import RunAs, StackError, ensure_port_free, port_open, stop_process, wait_until
from portal.settings import events_username

BROKER_DIR = Path(__file__).resolve().parent.parent / "broker"
DYNSEC_PLUGIN_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
    "/usr/local/lib/mosquitto_dynamic_security.so",
)
# Mosquitto 2.0's own choice for passwords it hashes; we hash the service accounts the same way.
PBKDF2_ITERATIONS = 101
# Every account is pinned to one client id, its own username (see ``pin_client_ids``), so an
# account can only ever hold the one session named after it: hubs and portals therefore get an
# account per replica, the portal one more for its live-event connection, and operator tools
# (`ems demo`) and the broker's health check accounts of their own.
HUB_USER = "ems-hub-1"
PORTAL_USER = "ems-portal-1"
ADMIN_USER = "ems-admin"
HEALTHCHECK_USER = "ems-healthcheck"


def hub_user(i: int) -> str:
    """Hub replica ``i``'s account (from 1); also its client id."""
    return f"ems-hub-{i}"


def portal_user(i: int) -> str:
    """Portal replica ``i``'s account (from 1); also its client id."""
    return f"ems-portal-{i}"


@dataclass(frozen=True)
class ServiceAccount:
    username: str
    role: str
    secret: str  # which password: "hub" or "portal"
    text: str


def service_accounts(hubs: int = 1, portals: int = 1) -> list[ServiceAccount]:
    """The service accounts of a broker for ``hubs`` hub and ``portals`` portal replicas."""
    accounts = [
        ServiceAccount(hub_user(i), "hub", "hub", f"EMS hub replica {i}")
        for i in range(1, hubs + 1)
    ]
    for i in range(1, portals + 1):
        name = portal_user(i)
        accounts.append(
            ServiceAccount(name, "portal", "portal", f"EMS portal replica {i} (dynsec admin)")
        )
        accounts.append(
            ServiceAccount(events_username(name), "portal", "portal", f"EMS portal {i} events")
        )
    accounts.append(ServiceAccount(ADMIN_USER, "portal", "portal", "EMS operator tools (ems demo)"))
    accounts.append(ServiceAccount(HEALTHCHECK_USER, "healthcheck", "hub", "broker health check"))
    return accounts


def dynsec_plugin() -> str:
    if env := os.environ.get("EMS_MOSQUITTO_DYNSEC_PLUGIN"):
        return env
    for candidate in DYNSEC_PLUGIN_CANDIDATES:
        if Path(candidate).exists():
            return candidate
    raise StackError(
        "Mosquitto's dynamic-security plugin was not found — run `make install` (installs "
        "mosquitto) or set EMS_MOSQUITTO_DYNSEC_PLUGIN"
    )


def mosquitto_binary() -> str:
    found = (
        os.environ.get("EMS_MOSQUITTO_BIN") or shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    )
    if not Path(found).exists():
        raise StackError("mosquitto not found — run `make install` (installs mosquitto)")
    return found


def hash_password(password: str, salt: bytes | None = None) -> dict[str, Any]:
    """The dynamic-security plugin's PBKDF2-SHA512 password record."""
    salt = salt if salt is not None else secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS, 64)
    return {
        "password": base64.b64encode(digest).decode(),
        "salt": base64.b64encode(salt).decode(),
        "iterations": PBKDF2_ITERATIONS,
    }


def service_roles() -> dict[str, list[dict[str, Any]]]:
    roles: dict[str, list[dict[str, Any]]] = json.loads((BROKER_DIR / "roles.json").read_text())
    return roles


def _client(account: ServiceAccount, passwords: dict[str, str]) -> dict[str, Any]:
    return {
        "username": account.username,
        "clientid": account.username,
        "textName": account.text,
        "roles": [{"rolename": account.role}],
        **hash_password(passwords[account.secret]),
    }


def dynsec_document(
    hub_password: str, portal_password: str, *, hubs: int = 1, portals: int = 1
) -> dict[str, Any]:
    """The initial dynamic-security.json: the service accounts, their roles, closed defaults."""
    roles = service_roles()
    passwords = {"hub": hub_password, "portal": portal_password}
    return {
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": True,
            "subscribe": False,
            "unsubscribe": True,
        },
        "clients": [_client(a, passwords) for a in service_accounts(hubs, portals)],
        "groups": [],
        "roles": [{"rolename": name, "acls": acls} for name, acls in roles.items()],
    }


def add_service_accounts(
    doc: dict[str, Any], hub_password: str, portal_password: str, *, hubs: int, portals: int
) -> bool:
    """Add the service accounts missing from an existing document (an earlier release's, or a
    stack started again with more replicas); existing accounts and passwords are kept."""
    clients = doc.setdefault("clients", [])
    have = {c.get("username") for c in clients}
    passwords = {"hub": hub_password, "portal": portal_password}
    missing = [a for a in service_accounts(hubs, portals) if a.username not in have]
    clients.extend(_client(a, passwords) for a in missing)
    return bool(missing)


def sync_service_roles(doc: dict[str, Any]) -> bool:
    """Give the service roles in an existing dynamic-security document the ACLs of this
    release's broker/roles.json (meters' roles are left alone). True if anything changed.
    Only while the broker is stopped: a running Mosquitto rewrites the file."""
    roles = doc.setdefault("roles", [])
    changed = False
    for name, acls in service_roles().items():
        found = next((r for r in roles if r.get("rolename") == name), None)
        if found is None:
            roles.append({"rolename": name, "acls": acls})
            changed = True
        elif found.get("acls") != acls:
            found["acls"] = acls
            changed = True
    return changed


def pin_client_ids(doc: dict[str, Any]) -> bool:
    """Bind every account in an existing dynamic-security document to one client id, its own
    username (a meter's is its device id). True if anything changed.

    An account without a ``clientid`` may connect under any client id — the hub's, the
    portal's or a meter's — and take over that session: a meter doing so inherited the hub's
    share of ``$share/hub/...`` and received other meters' readings. Accounts of earlier
    releases (meters, the shared ``ems-hub``/``ems-portal``) have none. Only while the broker
    is stopped: a running Mosquitto rewrites the file."""
    changed = False
    for client in doc.get("clients", []):
        username = client.get("username")
        if username and client.get("clientid") != username:
            client["clientid"] = username
            changed = True
    return changed


def upgrade_document(
    doc: dict[str, Any], hub_password: str, portal_password: str, *, hubs: int, portals: int
) -> bool:
    """Bring an earlier release's dynamic-security document up to this release: the service
    roles' ACLs, the service accounts for this many replicas, every account pinned to its
    client id. True if the file needs writing."""
    changes = [
        sync_service_roles(doc),
        add_service_accounts(doc, hub_password, portal_password, hubs=hubs, portals=portals),
        pin_client_ids(doc),
    ]
    return any(changes)


def write_private_json(path: Path, doc: dict[str, Any]) -> None:
    """Atomically, readable by its owner only (the file holds password hashes)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2))
    tmp.chmod(0o600)
    tmp.replace(path)


def render_config(
    *,
    data_dir: Path,
    port: int,
    host: str,
    dynsec_file: Path,
    max_inflight: int = 2000,
    max_queued: int = 1_000_000,
    tls: dict[str, str] | None = None,
    log_file: Path | None = None,
) -> str:
    tls_listener = ""
    if tls:
        tls_listener = (
            f"listener {tls['port']} {tls.get('host', host)}\n"
            f"certfile {tls['certfile']}\nkeyfile {tls['keyfile']}\n"
            + (f"cafile {tls['cafile']}\n" if tls.get("cafile") else "")
            + "tls_version tlsv1.2\n"
        )
    template = Template((BROKER_DIR / "mosquitto.conf.template").read_text())
    return template.substitute(
        data_dir=data_dir,
        port=port,
        host=host,
        dynsec_plugin=dynsec_plugin(),
        dynsec_file=dynsec_file,
        max_inflight=max_inflight,
        max_queued=max_queued,
        tls_listener=tls_listener,
        log_file=log_file or data_dir / "mosquitto.log",
    )


@dataclass
class MosquittoServer:
    """Mosquitto listening on host:port with its state under ``base_dir``."""

    base_dir: Path
    port: int
    hub_password: str
    portal_password: str
    run_as: RunAs
    host: str = "127.0.0.1"
    max_inflight: int = 2000
    hubs: int = 1  # replicas to create service accounts for
    portals: int = 1
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def conf_path(self) -> Path:
        return self.base_dir / "mosquitto.conf"

    @property
    def dynsec_path(self) -> Path:
        return self.base_dir / "dynamic-security.json"

    @property
    def log_path(self) -> Path:
        return self.base_dir / "mosquitto.log"

    def prepare(self) -> None:
        """Write the configuration; write the dynamic-security file only the first time."""
        (self.base_dir / "data").mkdir(parents=True, exist_ok=True)
        self.conf_path.write_text(
            render_config(
                data_dir=self.base_dir / "data",
                port=self.port,
                host=self.host,
                dynsec_file=self.dynsec_path,
                max_inflight=self.max_inflight,
                log_file=self.log_path,
            )
        )
        if not self.dynsec_path.exists():
            doc = dynsec_document(
                self.hub_password, self.portal_password, hubs=self.hubs, portals=self.portals
            )
            write_private_json(self.dynsec_path, doc)
        else:  # an earlier release's file: bring it up to date while the broker is stopped
            doc = json.loads(self.dynsec_path.read_text())
            if upgrade_document(
                doc, self.hub_password, self.portal_password, hubs=self.hubs, portals=self.portals
            ):
                write_private_json(self.dynsec_path, doc)
        self.dynsec_path.chmod(0o600)
        self.log_path.touch()
        self.run_as.give(self.base_dir)

    def start(self, timeout: float = 30.0) -> None:
        ensure_port_free(self.port, "Mosquitto", self.host)
        self.prepare()
        self.proc = self.run_as.popen(
            [mosquitto_binary(), "-c", str(self.conf_path)],
            log=self.base_dir / "mosquitto.stdout",
            cwd=self.base_dir,
        )
        wait_until(
            lambda: port_open(self.port, self.host),
            timeout=timeout,
            what=f"Mosquitto on {self.host}:{self.port}",
            proc=self.proc,
            log=self.log_path,
        )

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is not None:
            stop_process(self.proc, sig=signal.SIGTERM, timeout=timeout)
            self.proc = None
