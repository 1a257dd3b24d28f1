"""The environment `ems up` gives its hubs and portals: the operator's HUB_*/PORTAL_* tuning
passes through (the README's configuration table holds for `ems up` too), while the wiring
`ems up` owns — database, broker, credentials, ids, ports — always comes from `ems up`."""

from __future__ import annotations

from pathlib import Path

from ems.config import StackConfig
from ems.service_env import HUB_PREFIX, PORTAL_PREFIX, compose, hub_env, overridden, portal_env

CFG = StackConfig(Path("/nowhere"), "127.0.0.1", 5432, 1883, 8001, 8000, replicas=2)
SECRETS = {
    "pg_password": "pg",
    "hub_mqtt_password": "hub-secret",
    "portal_mqtt_password": "portal-secret",
    "jwt_secret": "j" * 40,
}
DSN = "postgresql://ems:pg@127.0.0.1:5432/ems"
SHELL = {
    "PATH": "/usr/bin",
    "HUB_MAX_LATENESS_S": "3600",
    "HUB_BATCH_SIZE": "100",
    "HUB_CLIENT_ID": "mine",
    "HUB_DATABASE_URL": "postgresql://elsewhere/db",
    "PORTAL_COOKIE_SECURE": "true",
    "PORTAL_ALLOW_REGISTRATION": "false",
    "PORTAL_JWT_SECRET": "short",
}


def test_hub_tuning_reaches_every_hub_and_the_wiring_stays_with_ems_up() -> None:
    for i, port in ((1, 8001), (2, 8002)):
        env = compose(SHELL, HUB_PREFIX, hub_env(CFG, i, port, DSN, SECRETS))
        assert env["PATH"] == "/usr/bin"
        assert env["HUB_MAX_LATENESS_S"] == "3600"
        assert env["HUB_BATCH_SIZE"] == "100"
        assert env["HUB_CLIENT_ID"] == f"ems-hub-{i}"  # one per replica, never the shell's
        assert env["HUB_DATABASE_URL"] == DSN
        assert env["HUB_HTTP_PORT"] == str(port)
        assert not [k for k in env if k.startswith(PORTAL_PREFIX)]


def test_portal_tuning_reaches_every_portal_and_the_wiring_stays_with_ems_up() -> None:
    env = compose(SHELL, PORTAL_PREFIX, portal_env(CFG, 2, 40000, DSN, SECRETS))
    assert env["PORTAL_COOKIE_SECURE"] == "true"
    assert env["PORTAL_ALLOW_REGISTRATION"] == "false"
    assert env["PORTAL_JWT_SECRET"] == SECRETS["jwt_secret"]
    assert env["PORTAL_INSTANCE_ID"] == "portal-2"
    assert env["PORTAL_HTTP_PORT"] == "40000"
    assert not [k for k in env if k.startswith(HUB_PREFIX)]


def test_owned_settings_set_in_the_shell_are_named_never_shown() -> None:
    owned = {**hub_env(CFG, 1, 8001, DSN, SECRETS), **portal_env(CFG, 1, 8000, DSN, SECRETS)}
    assert overridden(SHELL, owned) == ["HUB_CLIENT_ID", "HUB_DATABASE_URL", "PORTAL_JWT_SECRET"]
    assert overridden({"HUB_MAX_LATENESS_S": "1"}, owned) == []
