"""The environment `ems up` gives each hub and portal replica (compose.yaml sets the same names).

Replica ``i`` (from 1) of N: hubs get distinct client ids in one share group — the broker's
persistent session is keyed by the client id, so it must be stable across restarts and unique
among live hubs — and portals get distinct instance ids (reported by GET /health).

Every other ``HUB_*`` / ``PORTAL_*`` variable of the supervisor's environment (the README's
configuration table: ``HUB_MAX_LATENESS_S``, ``PORTAL_COOKIE_SECURE``…) reaches every hub /
portal unchanged. The variables set below are owned by `ems up`: they wire the children to the
servers and secrets it runs itself, so a value from the shell would only break that wiring (a
second database, a client id shared by two replicas); such a value is ignored, and named.
"""

from __future__ import annotations

from collections.abc import Mapping

from ems.broker import hub_user, portal_user
from ems.config import StackConfig
from ems.nginx import proxy_source_addresses

HUB_SHARE_GROUP = "hub"


HUB_PREFIX = "HUB_"
PORTAL_PREFIX = "PORTAL_"


def inherited(environ: Mapping[str, str]) -> dict[str, str]:
    """The supervisor's environment without HUB_*/PORTAL_*: each kind gets only its own."""
    return {k: v for k, v in environ.items() if not k.startswith((HUB_PREFIX, PORTAL_PREFIX))}


def compose(environ: Mapping[str, str], prefix: str, owned: Mapping[str, str]) -> dict[str, str]:
    """A child's whole environment: the supervisor's, its ``prefix`` settings from there (the
    operator's tuning), and on top the ``owned`` settings of `ems up` (hub_env/portal_env)."""
    tuning = {k: v for k, v in environ.items() if k.startswith(prefix)}
    return {**inherited(environ), **tuning, **owned}


def overridden(environ: Mapping[str, str], owned: Mapping[str, str]) -> list[str]:
    """Names (never values: some are secrets) of owned settings the operator set anyway."""
    return sorted(k for k in owned if k in environ)


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
    env = {
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
    if cfg.replicas > 1:
        # nginx (ems.nginx) is in front: its X-Forwarded-For is the browser's address, which the
        # sign-in limits key on. Alone, a portal is reached directly and trusts nobody's.
        env["PORTAL_TRUSTED_PROXIES"] = ",".join(proxy_source_addresses(cfg.host))
    return env
