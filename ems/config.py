"""Where `ems up` keeps its state, and the secrets it generates once and then reuses."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SECRET_KEYS = ("pg_password", "hub_mqtt_password", "portal_mqtt_password", "jwt_secret")


@dataclass(frozen=True, slots=True)
class StackConfig:
    home: Path
    host: str
    pg_port: int
    mqtt_port: int
    hub_port: int
    portal_port: int
    replicas: int = 1
    demo: bool = False
    demo_meters: int = 4

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: object) -> StackConfig:
        def port(name: str, default: int) -> int:
            raw = environ.get(name, str(default))
            try:
                value = int(raw)
            except ValueError:
                raise ValueError(f"{name}={raw!r} is not a port number") from None
            if not 0 < value < 65536:
                raise ValueError(f"{name}={value} is not a port number (1-65535)")
            return value

        values: dict[str, object] = {
            "home": Path(environ.get("EMS_HOME", ".ems")).resolve(),
            "host": environ.get("EMS_HOST", "127.0.0.1"),
            "pg_port": port("EMS_PG_PORT", 55432),
            "mqtt_port": port("EMS_MQTT_PORT", 1883),
            "hub_port": port("EMS_HUB_PORT", 8001),
            "portal_port": port("EMS_PORTAL_PORT", 8000),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


def load_or_create_secrets(home: Path) -> dict[str, str]:
    """Secrets live in ``home/secrets.json`` (mode 600), created on the first start."""
    path = home / "secrets.json"
    home.mkdir(parents=True, exist_ok=True)
    os.chmod(home, 0o755)  # noqa: S103 - the service user traverses it; secrets.json is 600
    existing: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    changed = False
    for key in SECRET_KEYS:
        if not existing.get(key):
            existing[key] = secrets.token_urlsafe(32)
            changed = True
    if changed:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(existing, indent=2))
        tmp.chmod(0o600)
        tmp.replace(path)
    return existing
