"""Portal settings, parsed once from an explicit mapping (the environment in production)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from common.env import Env, SettingsError

__all__ = ["PortalSettings", "SettingsError", "events_username", "load_settings"]


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


def _networks(env: Env, name: str) -> tuple[str, ...]:
    """A comma-separated list of IP addresses or CIDR networks, each checked."""
    items = [item.strip() for item in env.str(name, "").split(",") if item.strip()]
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise SettingsError(
                f"{name}: {item!r} is not an IP address or network (e.g. 10.0.0.2, 172.18.0.0/16)"
            ) from None
    return tuple(items)


def load_settings(environ: Mapping[str, str]) -> PortalSettings:
    env = Env(environ, who="the portal")
    return PortalSettings(
        database_url=env.secret("PORTAL_DATABASE_URL"),
        jwt_secret=env.secret("PORTAL_JWT_SECRET", min_length=32),
        mqtt_username=env.secret("PORTAL_MQTT_USERNAME"),
        mqtt_password=env.secret("PORTAL_MQTT_PASSWORD"),
        mqtt_host=env.str("PORTAL_MQTT_HOST", "127.0.0.1"),
        mqtt_port=env.int("PORTAL_MQTT_PORT", 1883),
        http_host=env.str("PORTAL_HTTP_HOST", "127.0.0.1"),
        http_port=env.int("PORTAL_HTTP_PORT", 8000),
        instance_id=env.str("PORTAL_INSTANCE_ID", "portal-1"),
        allow_registration=env.bool("PORTAL_ALLOW_REGISTRATION", True),
        cookie_secure=env.bool("PORTAL_COOKIE_SECURE", False),
        token_ttl_s=env.int("PORTAL_TOKEN_TTL_S", 12 * 3600),
        login_max_failures=env.int("PORTAL_LOGIN_MAX_FAILURES", 10),
        login_address_max_failures=env.int("PORTAL_LOGIN_ADDRESS_MAX_FAILURES", 50),
        login_backoff_s=env.float("PORTAL_LOGIN_BACKOFF_S", 1.0),
        trusted_proxies=_networks(env, "PORTAL_TRUSTED_PROXIES"),
        login_window_s=env.int("PORTAL_LOGIN_WINDOW_S", 300),
        db_pool_size=env.int("PORTAL_DB_POOL_SIZE", 10),
        auth_cache_ttl_s=env.float("PORTAL_AUTH_CACHE_TTL_S", 1.0),
        broker_wait_s=env.float("PORTAL_BROKER_WAIT_S", 3.0),
        broker_timeout_s=env.float("PORTAL_BROKER_TIMEOUT_S", 10.0),
    )
