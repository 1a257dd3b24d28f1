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
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

from ems.procs import RunAs, StackError, ensure_port_free, port_open, stop_process, wait_until
from portal.broker_admin import meter_role

BROKER_DIR = Path(__file__).resolve().parent.parent / "broker"
DYNSEC_PLUGIN_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
    "/usr/local/lib/mosquitto_dynamic_security.so",
)
# Mosquitto 2.0's own choice for passwords it hashes; we hash the service accounts the same way.
PBKDF2_ITERATIONS = 101
HUB_USER = "ems-hub"
PORTAL_USER = "ems-portal"


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


def dynsec_document(hub_password: str, portal_password: str) -> dict[str, Any]:
    """The initial dynamic-security.json: two service accounts, their roles, closed defaults."""
    roles = service_roles()
    return {
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": True,
            "subscribe": False,
            "unsubscribe": True,
        },
        "clients": [
            {
                "username": HUB_USER,
                "textName": "EMS hub service account",
                "roles": [{"rolename": "hub"}],
                **hash_password(hub_password),
            },
            {
                "username": PORTAL_USER,
                "textName": "EMS portal service account (dynamic-security admin)",
                "roles": [{"rolename": "portal"}],
                **hash_password(portal_password),
            },
        ],
        "groups": [],
        "roles": [{"rolename": name, "acls": acls} for name, acls in roles.items()],
    }


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


def pin_meter_client_ids(doc: dict[str, Any]) -> bool:
    """Bind every meter account in an existing dynamic-security document to its own client id
    (its username, the device id). True if anything changed.

    Meters provisioned by earlier releases have no ``clientid``, so they may connect under any
    client id — the hub's, the portal's or another meter's — and take over that session. A
    meter is a client whose role is its own ``meter-<username>`` role (portal/broker_admin.py).
    Only while the broker is stopped: a running Mosquitto rewrites the file."""
    changed = False
    for client in doc.get("clients", []):
        username = str(client.get("username", ""))
        try:
            role = meter_role(uuid.UUID(username))
        except ValueError:
            continue  # not a device id: a service account
        roles = {r.get("rolename") for r in client.get("roles", [])}
        if role in roles and client.get("clientid") != username:
            client["clientid"] = username
            changed = True
    return changed


def upgrade_document(doc: dict[str, Any]) -> bool:
    """Bring an earlier release's dynamic-security document up to this release: the service
    roles' ACLs, meters pinned to their client ids. True if the file needs writing."""
    roles_changed = sync_service_roles(doc)
    return pin_meter_client_ids(doc) or roles_changed


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
            write_private_json(
                self.dynsec_path, dynsec_document(self.hub_password, self.portal_password)
            )
        else:  # an earlier release's file: bring it up to date while the broker is stopped
            doc = json.loads(self.dynsec_path.read_text())
            if upgrade_document(doc):
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
