"""Meter credentials through the dynamic-security API, against the real Mosquitto."""

from __future__ import annotations

import asyncio
import uuid

from devkit.helpers import Subscriber, mqtt_connect_result, publish_as
from portal.broker_admin import BrokerAdmin, new_meter_password
from tests.conftest import BrokerInfo


def _admin(broker: BrokerInfo) -> BrokerAdmin:
    return BrokerAdmin(broker.host, broker.port, broker.portal_user, broker.portal_password)


def test_meter_publishes_only_under_its_own_id_and_loses_access_when_deleted(
    broker: BrokerInfo,
) -> None:
    meter, other = uuid.uuid4(), uuid.uuid4()
    password = new_meter_password()

    async def create() -> None:
        async with _admin(broker) as admin:
            await admin.create_meter(meter, password)

    asyncio.run(create())
    hub = Subscriber(
        broker.host, broker.port, broker.hub_user, broker.hub_password, "ems/v1/meters/+/readings"
    )
    try:
        publish_as(broker, str(meter), password, f"ems/v1/meters/{meter}/readings", b"own")
        publish_as(broker, str(meter), password, f"ems/v1/meters/{other}/readings", b"foreign")
        publish_as(broker, str(meter), password, f"ems/v1/meters/{meter}/readings", b"own-2")
        from devkit.helpers import wait_for

        wait_for(lambda: len(hub.received()) >= 2, what="the meter's own readings")
        topics = [(m.topic, m.payload) for m in hub.received()]
        assert topics == [
            (f"ems/v1/meters/{meter}/readings", b"own"),
            (f"ems/v1/meters/{meter}/readings", b"own-2"),
        ]
    finally:
        hub.close()

    async def rotate_then_delete() -> str:
        new_password = new_meter_password()
        async with _admin(broker) as admin:
            await admin.set_meter_password(meter, new_password)
        return new_password

    new_password = asyncio.run(rotate_then_delete())
    old = mqtt_connect_result(broker.host, broker.port, str(meter), password)
    assert not isinstance(old, str) and old.is_failure
    new = mqtt_connect_result(broker.host, broker.port, str(meter), new_password)
    assert not isinstance(new, str) and not new.is_failure

    async def delete() -> None:
        async with _admin(broker) as admin:
            await admin.delete_meter(meter)

    asyncio.run(delete())
    gone = mqtt_connect_result(broker.host, broker.port, str(meter), new_password)
    assert not isinstance(gone, str) and gone.is_failure
