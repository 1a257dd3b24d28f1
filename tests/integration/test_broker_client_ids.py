"""Client ids belong to their credentials: against the real Mosquitto, nobody connects under
another account's client id (issue 13 item 1).

Without the pin, a meter connecting as ``ems-hub-1`` took over the hub's persistent session (and
its share of ``$share/hub/...``), received other meters' readings, and the two knocked each other
off in a loop.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from litestar.testing import TestClient

from contract.payloads import Reading
from contract.readings import encode_reading
from contract.topics import readings_topic
from devkit.helpers import mqtt_connect_result, publish_as, wait_for
from devkit.hubkit import add_devices, count, start_hub
from ems.broker import ADMIN_USER, HUB_USER, PORTAL_USER, hub_user
from portal.app import create_app
from portal.broker_admin import BrokerAdmin, meter_acls, meter_role, new_meter_password
from portal.settings import PortalSettings, events_username
from tests.conftest import BrokerInfo

NOT_AUTHORISED = 0x87  # MQTT 5 CONNACK reason code


def _create_meters(broker: BrokerInfo, devices: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    passwords = {d: new_meter_password() for d in devices}

    async def go() -> None:
        async with BrokerAdmin(
            broker.host, broker.port, broker.portal_user, broker.portal_password
        ) as admin:
            for device, password in passwords.items():
                await admin.create_meter(device, password)

    asyncio.run(go())
    return passwords


def _assert_refused(broker: BrokerInfo, username: str, password: str, client_id: str) -> None:
    rc = mqtt_connect_result(broker.host, broker.port, username, password, client_id=client_id)
    assert not isinstance(rc, str), rc
    assert rc.value == NOT_AUTHORISED, rc


def _client_ids_of(broker: BrokerInfo, username: str) -> set[str]:
    """Client ids the broker accepted for ``username`` (from its connection log lines)."""
    pattern = re.compile(rf"New client connected from \S+ as (\S+) \(.*u'{re.escape(username)}'\)")
    return set(pattern.findall(broker.server.log_path.read_text()))


def _refusals_logged(broker: BrokerInfo) -> int:
    # Mosquitto 2.0.11 logs the refusal without the client id it asked for ("Client <unknown>
    # disconnected, not authorised."); the line before it names the connection's address.
    return broker.server.log_path.read_text().count("disconnected, not authorised")


def test_meter_cannot_take_the_hubs_client_id_while_the_hub_stores_every_reading(
    database_url: str, broker: BrokerInfo
) -> None:
    intruder, honest = add_devices(database_url, 2)
    passwords = _create_meters(broker, [intruder, honest])
    # The hub as production runs it: its pinned account and client id.
    hub = start_hub(database_url, broker, mqtt_username=HUB_USER, client_id=HUB_USER)
    try:
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
        for i in range(20):
            reading = Reading(honest, start + timedelta(minutes=10 * i), 100.0 + i)
            publish_as(
                broker,
                str(honest),
                passwords[honest],
                readings_topic(honest),
                encode_reading(reading),
            )
            if i % 5 == 0:  # the takeover attempts interleave with the stream
                _assert_refused(broker, str(intruder), passwords[intruder], "ems-hub-1")
        wait_for(
            lambda: count(database_url, "SELECT count(*) FROM readings") >= 20,
            what="the honest meter's 20 readings",
        )
        assert (
            count(database_url, "SELECT count(*) FROM readings WHERE device_id = %s", (honest,))
            == 20
        )
        assert hub.metrics.stored._value.get() == 20
        assert hub.metrics.duplicates._value.get() == 0  # nothing was redelivered
        assert hub.mqtt.connects == 1  # never knocked off its session
        assert hub.mqtt.connected.is_set()
        assert "closing old connection" not in broker.server.log_path.read_text()
    finally:
        hub.stop()
    assert _refusals_logged(broker) == 4


def test_meter_cannot_take_another_meters_client_id(database_url: str, broker: BrokerInfo) -> None:
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    passwords = _create_meters(broker, [mine, theirs])
    _assert_refused(broker, str(mine), passwords[mine], str(theirs))
    assert _refusals_logged(broker) == 1
    # Under its own id the same credentials work: the refusal is about the id, not the password.
    own = mqtt_connect_result(
        broker.host, broker.port, str(mine), passwords[mine], client_id=str(mine)
    )
    assert not isinstance(own, str) and not own.is_failure


def test_meter_cannot_take_the_portals_client_ids(
    broker: BrokerInfo, portal_settings: PortalSettings
) -> None:
    meter = uuid.uuid4()
    password = _create_meters(broker, [meter])[meter]
    accounts = (portal_settings.mqtt_username, events_username(portal_settings.mqtt_username))
    with TestClient(create_app(portal_settings)) as portal:
        # The portal's connections (dynamic-security admin, live events) as the broker saw them.
        def portal_connections() -> set[str] | None:
            ids = set().union(*(_client_ids_of(broker, a) for a in accounts))
            return ids if len(ids) == 2 else None

        portal_ids = wait_for(portal_connections, what="the portal's two connections")
        assert portal_ids == set(accounts)  # each under the id pinned to its account
        for client_id in portal_ids:
            _assert_refused(broker, str(meter), password, client_id)
        assert _refusals_logged(broker) == len(portal_ids)
        assert "closing old connection" not in broker.server.log_path.read_text()
        assert portal.get("/health").json()["events"] == "subscribed"


def _create_unpinned_meter(broker: BrokerInfo, device: uuid.UUID, password: str) -> None:
    """A meter as releases before the pin provisioned it: no client id on its account."""

    async def go() -> None:
        async with BrokerAdmin(
            broker.host, broker.port, broker.portal_user, broker.portal_password
        ) as admin:
            await admin.command(
                command="createRole", rolename=meter_role(device), acls=meter_acls(device)
            )
            await admin.command(
                command="createClient",
                username=str(device),
                password=password,
                roles=[{"rolename": meter_role(device)}],
            )

    asyncio.run(go())


def test_meters_provisioned_before_the_pin_are_pinned_when_the_broker_starts(
    broker: BrokerInfo,
) -> None:
    old, password = uuid.uuid4(), new_meter_password()
    _create_unpinned_meter(broker, old, password)
    # What the pin closes: the old account can still take the hub's id.
    took = mqtt_connect_result(broker.host, broker.port, str(old), password, client_id="ems-hub-1")
    assert not isinstance(took, str) and not took.is_failure

    broker.server.stop()  # `ems up` / broker-init upgrade the file while the broker is stopped
    broker.server.start()

    _assert_refused(broker, str(old), password, "ems-hub-1")
    own = mqtt_connect_result(broker.host, broker.port, str(old), password, client_id=str(old))
    assert not isinstance(own, str) and not own.is_failure


def test_provisioning_an_existing_unpinned_meter_again_pins_it(broker: BrokerInfo) -> None:
    meter = uuid.uuid4()
    _create_unpinned_meter(broker, meter, new_meter_password())
    password = _create_meters(broker, [meter])[meter]  # the portal's path: "already exists"
    _assert_refused(broker, str(meter), password, "ems-hub-1")


def test_service_accounts_cannot_take_each_others_client_ids(broker: BrokerInfo) -> None:
    for username, password, client_id in (
        (hub_user(2), broker.hub_password, HUB_USER),  # one hub replica another's session
        (PORTAL_USER, broker.portal_password, HUB_USER),
        (ADMIN_USER, broker.portal_password, PORTAL_USER),
        (HUB_USER, broker.hub_password, f"ems-hub-1-{uuid.uuid4().hex[:4]}"),  # nor any other
    ):
        _assert_refused(broker, username, password, client_id)
    own = mqtt_connect_result(
        broker.host, broker.port, HUB_USER, broker.hub_password, client_id=HUB_USER
    )
    assert not isinstance(own, str) and not own.is_failure


def test_the_compose_health_check_logs_in_under_its_own_pinned_account(
    broker: BrokerInfo,
) -> None:
    compose = yaml.safe_load((Path(__file__).resolve().parents[2] / "compose.yaml").read_text())
    argv = shlex.split(compose["services"]["broker"]["healthcheck"]["test"][1])
    argv[argv.index("-h") + 1], argv[argv.index("-p") + 1] = broker.host, str(broker.port)
    argv[argv.index("-P") + 1] = broker.hub_password  # $EMS_HUB_MQTT_PASSWORD in the container
    assert subprocess.run(argv, capture_output=True, timeout=10).returncode == 0
    assert _refusals_logged(broker) == 0
