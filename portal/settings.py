"""Portal settings, parsed once from an explicit mapping (the environment in production)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass


class SettingsError(ValueError):
    pass


_PLACEHOLDERS = {"changeme", "change-me", "secret", "password", "jwt-secret"}


def events_username(username: str) -> str:
    """The account of a portal's live-event connection, next to its dynamic-security admin
    connection's ``username``: the broker pins each account to one client id (its username),
    and the portal holds two connections at once."""
    return f"{username}-events"


@dataclass(frozen=True, slots=True)
class PortalSettings:
    database_url: str
    jwt_secret: str
    mqtt_username: str
    mqtt_password: str
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    instance_id: str = "portal-1"
    allow_registration: bool = True
    cookie_secure: bool = False
    token_ttl_s: int = 12 * 3600
    login_max_failures: int = 10  # per (address, user name); portal.auth.throttle
    login_address_max_failures: int = 50  # per address, whatever the user names
    login_backoff_s: float = 1.0  # first back-off delay of a pair; doubles; 0 turns it off
    login_window_s: int = 300
    # Peers whose X-Forwarded-For / X-Forwarded-Proto are believed (IPs or CIDRs): the reverse
    # proxy. Anyone else's are ignored, so a client cannot pick the address it is limited by.
    trusted_proxies: tuple[str, ...] = ()
    db_pool_size: int = 10
    auth_cache_ttl_s: float = 1.0
    broker_wait_s: float = 3.0
    broker_timeout_s: float = 10.0

    @property
    def async_database_url(self) -> str:
        """SQLAlchemy URL for psycopg 3 in async mode."""
        url = self.database_url
        for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        raise SettingsError("PORTAL_DATABASE_URL must be a postgresql:// URL")


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean (true/false)")


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None


def _networks(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated list of IP addresses or CIDR networks, each checked."""
    items = [item.strip() for item in env.get(name, "").split(",") if item.strip()]
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise SettingsError(
                f"{name}: {item!r} is not an IP address or network (e.g. 10.0.0.2, 172.18.0.0/16)"
            ) from None
    return tuple(items)


def _required(env: Mapping[str, str], name: str, *, min_length: int = 1) -> str:
    value = env.get(name, "")
    if not value or value.lower() in _PLACEHOLDERS:
        raise SettingsError(
            f"{name} must be set (and not to a placeholder) — the portal cannot start"
        )
    if len(value) < min_length:
        raise SettingsError(f"{name} must be at least {min_length} characters long")
    return value


def load_settings(env: Mapping[str, str]) -> PortalSettings:
    return PortalSettings(
        database_url=_required(env, "PORTAL_DATABASE_URL"),
        jwt_secret=_required(env, "PORTAL_JWT_SECRET", min_length=32),
        mqtt_username=_required(env, "PORTAL_MQTT_USERNAME"),
        mqtt_password=_required(env, "PORTAL_MQTT_PASSWORD"),
        mqtt_host=env.get("PORTAL_MQTT_HOST", "127.0.0.1"),
        mqtt_port=_int(env, "PORTAL_MQTT_PORT", 1883),
        http_host=env.get("PORTAL_HTTP_HOST", "127.0.0.1"),
        http_port=_int(env, "PORTAL_HTTP_PORT", 8000),
        instance_id=env.get("PORTAL_INSTANCE_ID", "portal-1"),
        allow_registration=_bool(env, "PORTAL_ALLOW_REGISTRATION", True),
        cookie_secure=_bool(env, "PORTAL_COOKIE_SECURE", False),
        token_ttl_s=_int(env, "PORTAL_TOKEN_TTL_S", 12 * 3600),
        login_max_failures=_int(env, "PORTAL_LOGIN_MAX_FAILURES", 10),
        login_address_max_failures=_int(env, "PORTAL_LOGIN_ADDRESS_MAX_FAILURES", 50),
        login_backoff_s=_float(env, "PORTAL_LOGIN_BACKOFF_S", 1.0),
        trusted_proxies=_networks(env, "PORTAL_TRUSTED_PROXIES"),
        login_window_s=_int(env, "PORTAL_LOGIN_WINDOW_S", 300),
        db_pool_size=_int(env, "PORTAL_DB_POOL_SIZE", 10),
        auth_cache_ttl_s=_float(env, "PORTAL_AUTH_CACHE_TTL_S", 1.0),
        broker_wait_s=_float(env, "PORTAL_BROKER_WAIT_S", 3.0),
        broker_timeout_s=_float(env, "PORTAL_BROKER_TIMEOUT_S", 10.0),
    )
