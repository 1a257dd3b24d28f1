"""The environment `ems up` gives each hub and portal replica (compose.yaml sets the same names).

Replica ``i`` (from 1) of N: hubs get distinct client ids in one share group — the broker's
persistent session is keyed by the client id, so it must be stable across restarts and unique
among live hubs — and portals get distinct instance ids (reported by GET /health).
"""

from __future__ import annotations

from collections.abc import Mapping

from ems.broker import hub_user, portal_user
from ems.config import StackConfig

HUB_SHARE_GROUP = "hub"


def inherited(environ: Mapping[str, str]) -> dict[str, str]:
    """The supervisor's environment minus any HUB_*/PORTAL_* left over in the shell."""
    return {k: v for k, v in environ.items() if not k.startswith(("HUB_", "PORTAL_"))}


def hub_env(
    cfg: StackConfig, i: int, http_port: int, dsn: str, secrets: Mapping[str, str]
) -> dict[str, str]:
    return {
        "HUB_DATABASE_URL": dsn,
        "HUB_MQTT_HOST": cfg.host,
        "HUB_MQTT_PORT": str(cfg.mqtt_port),
        "HUB_MQTT_USERNAME": hub_user(i),
        "HUB_MQTT_PASSWORD": secrets["hub_mqtt_password"],
        "HUB_CLIENT_ID": hub_user(i),  # the broker pins each account to its own name
        "HUB_SHARE_GROUP": HUB_SHARE_GROUP,
        "HUB_HTTP_HOST": cfg.host,
        "HUB_HTTP_PORT": str(http_port),
    }


def portal_env(
    cfg: StackConfig, i: int, http_port: int, dsn: str, secrets: Mapping[str, str]
) -> dict[str, str]:
    return {
        "PORTAL_DATABASE_URL": dsn,
        "PORTAL_JWT_SECRET": secrets["jwt_secret"],
        "PORTAL_MQTT_HOST": cfg.host,
        "PORTAL_MQTT_PORT": str(cfg.mqtt_port),
        "PORTAL_MQTT_USERNAME": portal_user(i),
        "PORTAL_MQTT_PASSWORD": secrets["portal_mqtt_password"],
        "PORTAL_HTTP_HOST": cfg.host,
        "PORTAL_HTTP_PORT": str(http_port),
        "PORTAL_INSTANCE_ID": f"portal-{i}",
    }
