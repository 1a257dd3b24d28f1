"""Settings and configuration that must fail fast and clearly, and the broker bootstrap."""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

from ems.broker import (
    dynsec_document,
    hash_password,
    render_config,
    sync_service_roles,
    upgrade_document,
)
from ems.cli import build_parser
from ems.config import StackConfig, load_or_create_secrets
from ems.procs import RunAs
from hub.settings import SettingsError as HubSettingsError
from hub.settings import load_settings as load_hub
from portal.settings import SettingsError as PortalSettingsError
from portal.settings import load_settings as load_portal

HUB_ENV = {
    "HUB_DATABASE_URL": "postgresql://ems:pw@127.0.0.1:5432/ems",
    "HUB_MQTT_USERNAME": "ems-hub-2",
    "HUB_MQTT_PASSWORD": "a-real-secret",
}
PORTAL_ENV = {
    "PORTAL_DATABASE_URL": "postgresql://ems:pw@127.0.0.1:5432/ems",
    "PORTAL_JWT_SECRET": "x" * 40,
    "PORTAL_MQTT_USERNAME": "ems-portal",
    "PORTAL_MQTT_PASSWORD": "a-real-secret",
}


@pytest.mark.parametrize("missing", sorted(HUB_ENV))
def test_hub_refuses_to_start_without_a_required_setting(missing: str) -> None:
    env = {k: v for k, v in HUB_ENV.items() if k != missing}
    with pytest.raises(HubSettingsError, match=missing):
        load_hub(env)


def test_hub_refuses_a_placeholder_secret_and_a_bad_number() -> None:
    with pytest.raises(HubSettingsError, match="HUB_MQTT_PASSWORD"):
        load_hub({**HUB_ENV, "HUB_MQTT_PASSWORD": "changeme"})
    with pytest.raises(HubSettingsError, match="HUB_BATCH_SIZE"):
        load_hub({**HUB_ENV, "HUB_BATCH_SIZE": "many"})


def test_hub_client_id_defaults_to_its_account_the_id_the_broker_pins_to_it() -> None:
    assert load_hub(HUB_ENV).client_id == "ems-hub-2"
    assert load_hub({**HUB_ENV, "HUB_CLIENT_ID": "ems-hub-7"}).client_id == "ems-hub-7"


def test_broker_config_bootstrap_brings_an_earlier_file_up_to_date(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dynsec = tmp_path / "dynamic-security.json"
    meter = str(uuid.uuid4())
    old = dynsec_document("hub-pw", "portal-pw")
    old["clients"] = [
        {"username": "ems-hub", "roles": [{"rolename": "hub"}]},
        {"username": meter, "roles": [{"rolename": f"meter-{meter}"}]},
    ]
    dynsec.write_text(json.dumps(old))
    monkeypatch.setenv("EMS_HUB_MQTT_PASSWORD", "hub-pw")
    monkeypatch.setenv("EMS_PORTAL_MQTT_PASSWORD", "portal-pw")
    argv = ["broker-config", "--bootstrap", f"--dynsec-file={dynsec}", f"--data-dir={tmp_path}"]
    args = build_parser().parse_args([*argv, f"--output={tmp_path / 'm.conf'}", "--hubs=2"])
    assert args.func(args) == 0
    clients = {c["username"]: c for c in json.loads(dynsec.read_text())["clients"]}
    assert {"ems-hub", meter, "ems-hub-1", "ems-hub-2", "ems-portal-1-events"} <= set(clients)
    assert all(c["clientid"] == name for name, c in clients.items())


def test_hub_batch_never_exceeds_the_in_flight_window() -> None:
    settings = load_hub({**HUB_ENV, "HUB_RECEIVE_MAXIMUM": "500", "HUB_BATCH_SIZE": "2000"})
    assert settings.batch_size == 500


def test_hub_power_ceiling_is_a_positive_number_of_watts() -> None:
    assert load_hub(HUB_ENV).max_power_w == 1e8
    assert load_hub({**HUB_ENV, "HUB_MAX_POWER_W": "5e7"}).max_power_w == 5e7
    for bad in ("0", "-1", "inf", "nan"):
        with pytest.raises(HubSettingsError, match="HUB_MAX_POWER_W"):
            load_hub({**HUB_ENV, "HUB_MAX_POWER_W": bad})


def test_portal_needs_a_long_jwt_secret_and_a_postgres_url() -> None:
    with pytest.raises(PortalSettingsError, match="at least 32"):
        load_portal({**PORTAL_ENV, "PORTAL_JWT_SECRET": "short"})
    with pytest.raises(PortalSettingsError, match="PORTAL_ALLOW_REGISTRATION"):
        load_portal({**PORTAL_ENV, "PORTAL_ALLOW_REGISTRATION": "perhaps"})
    settings = load_portal({**PORTAL_ENV, "PORTAL_ALLOW_REGISTRATION": "off"})
    assert settings.allow_registration is False
    assert settings.async_database_url.startswith("postgresql+psycopg://")


def test_stack_ports_are_validated() -> None:
    with pytest.raises(ValueError, match="EMS_PG_PORT"):
        StackConfig.from_env({"EMS_PG_PORT": "70000"})
    assert StackConfig.from_env({"EMS_MQTT_PORT": "11883"}).mqtt_port == 11883


def test_secrets_are_generated_once_private_and_reused(tmp_path: Path) -> None:
    first = load_or_create_secrets(tmp_path / "home")
    again = load_or_create_secrets(tmp_path / "home")
    assert first == again
    assert len(set(first.values())) == len(first)
    assert (tmp_path / "home" / "secrets.json").stat().st_mode & 0o777 == 0o600


def test_password_hash_is_mosquittos_pbkdf2_record() -> None:
    # A record written by `mosquitto_ctrl dynsec init` (Mosquitto 2.0.11) for "secretpw".
    salt = base64.b64decode("EOpfkR2Uzfx+02Hj")
    record = hash_password("secretpw", salt)
    assert record["password"] == (
        "L/QNaJmeBMmR3zt0k5Il2zqExsbz8C1THXktMUK/xhUxUFg/O+cLeXg4HG9rn57M4C/PKMb1219uARf01fDPMQ=="
    )
    assert record["iterations"] == 101


def test_dynsec_bootstrap_is_closed_by_default() -> None:
    doc = dynsec_document("hub-pw", "portal-pw")
    assert doc["defaultACLAccess"]["publishClientSend"] is False
    assert doc["defaultACLAccess"]["subscribe"] is False
    assert {c["username"] for c in doc["clients"]} == {
        "ems-hub-1",
        "ems-portal-1",
        "ems-portal-1-events",
        "ems-admin",
        "ems-healthcheck",
    }
    assert all("hub-pw" not in str(c) and "portal-pw" not in str(c) for c in doc["clients"])


def test_every_service_account_is_pinned_to_the_client_id_of_its_name() -> None:
    doc = dynsec_document("hub-pw", "portal-pw", hubs=3, portals=2)
    names = [c["username"] for c in doc["clients"]]
    assert {"ems-hub-1", "ems-hub-2", "ems-hub-3", "ems-portal-2", "ems-portal-2-events"} <= set(
        names
    )
    assert len(names) == len(set(names))
    assert all(c["clientid"] == c["username"] for c in doc["clients"])


def test_an_older_dynsec_file_gets_this_releases_service_roles_and_keeps_the_rest() -> None:
    doc = dynsec_document("hub-pw", "portal-pw")
    portal = next(r for r in doc["roles"] if r["rolename"] == "portal")
    current = list(portal["acls"])
    portal["acls"] = current[:2]  # as an earlier release wrote it
    meter = {"rolename": "meter-1", "acls": [{"acltype": "publishClientSend", "topic": "x"}]}
    doc["roles"].append(meter)
    clients = json.loads(json.dumps(doc["clients"]))
    assert sync_service_roles(doc) is True
    assert next(r for r in doc["roles"] if r["rolename"] == "portal")["acls"] == current
    assert meter in doc["roles"] and doc["clients"] == clients
    assert sync_service_roles(doc) is False  # up to date: nothing to write


def test_an_older_dynsec_file_gets_replica_accounts_and_every_account_pinned() -> None:
    hash_of_old = hash_password("old-hub-pw")
    meter = str(uuid.uuid4())
    doc = dynsec_document("hub-pw", "portal-pw")
    doc["clients"] = [  # as releases before the pin wrote it: shared accounts, unpinned meters
        {"username": "ems-hub", "roles": [{"rolename": "hub"}], **hash_of_old},
        {"username": "ems-portal", "roles": [{"rolename": "portal"}]},
        {"username": meter, "roles": [{"rolename": f"meter-{meter}"}]},
    ]
    assert upgrade_document(doc, "hub-pw", "portal-pw", hubs=2, portals=1) is True
    by_name = {c["username"]: c for c in doc["clients"]}
    assert all(c["clientid"] == name for name, c in by_name.items())
    assert {"ems-hub-1", "ems-hub-2", "ems-portal-1", "ems-portal-1-events"} <= set(by_name)
    assert by_name["ems-hub"]["password"] == hash_of_old["password"]  # kept as it was
    assert upgrade_document(doc, "hub-pw", "portal-pw", hubs=2, portals=1) is False


def test_rendered_broker_config_allows_no_anonymous_clients(tmp_path: Path) -> None:
    text = render_config(
        data_dir=tmp_path, port=1883, host="127.0.0.1", dynsec_file=tmp_path / "d.json"
    )
    lines = {line.strip() for line in text.splitlines()}
    assert "allow_anonymous false" in lines
    assert "persistence true" in lines
    assert "listener 1883 127.0.0.1" in lines


def test_service_user_reachability(tmp_path: Path) -> None:
    me = RunAs.current()
    assert me.can_reach(tmp_path)
    other = RunAs("someone", uid=os.getuid() + 12345, gid=os.getgid() + 12345)
    # pytest's own temporary root is private (700): exactly the case server_dir() handles.
    assert not other.can_reach(tmp_path)
    base = Path(tempfile.mkdtemp())
    os.chmod(base, 0o755)  # noqa: S103 - the point of the test
    private = base / "private"
    private.mkdir(mode=0o700)
    (private / "data").mkdir()
    os.chmod(private, 0o700)
    assert not other.can_reach(private / "data")
    os.chmod(private, 0o755)  # noqa: S103 - the point of the test
    assert other.can_reach(private / "data")
    shutil.rmtree(base)
