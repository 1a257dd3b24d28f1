"""Where `ems up` keeps its state, and the secrets it generates once and then reuses."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from common.env import Env

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
        env = Env(environ, who="ems")
        values: dict[str, object] = {
            "home": env.path("EMS_HOME", ".ems").resolve(),
            "host": env.str("EMS_HOST", "127.0.0.1"),
            "pg_port": env.int("EMS_PG_PORT", 55432, ge=1, le=65535),
            "mqtt_port": env.int("EMS_MQTT_PORT", 1883, ge=1, le=65535),
            "hub_port": env.int("EMS_HUB_PORT", 8001, ge=1, le=65535),
            "portal_port": env.int("EMS_PORTAL_PORT", 8000, ge=1, le=65535),
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
