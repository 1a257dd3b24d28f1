"""Meter credentials through Mosquitto's dynamic-security API ($CONTROL/dynamic-security/v1).

Each meter is an MQTT client whose username is its device id, with a role of its own whose ACLs
name only its own topics (Mosquitto 2.0's dynamic-security ACLs do not expand %u), and whose
client id is pinned to its device id: without the pin a meter could connect under the hub's
client id (or another meter's) and take over that session and its share of the readings.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from types import TracebackType
from typing import Any

import aiomqtt

from contract.topics import cmd_topic, readings_topic, status_topic
from portal.auth.passwords import generate_password

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = "$CONTROL/dynamic-security/v1/response"


class BrokerAdminError(RuntimeError):
    pass


def meter_role(device_id: uuid.UUID) -> str:
    return f"meter-{device_id}"


def meter_acls(device_id: uuid.UUID) -> list[dict[str, Any]]:
    return [
        {"acltype": "publishClientSend", "topic": readings_topic(device_id), "allow": True},
        {"acltype": "publishClientSend", "topic": status_topic(device_id), "allow": True},
        {"acltype": "subscribeLiteral", "topic": cmd_topic(device_id), "allow": True},
        {"acltype": "subscribeLiteral", "topic": status_topic(device_id), "allow": True},
    ]


def new_meter_password() -> str:
    return generate_password(24)


class BrokerAdmin:
    """An open connection to the broker as the portal's dynamic-security administrator."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        password: str,
        *,
        timeout: float = 10.0,
        client_id: str | None = None,
    ) -> None:
        # The broker accepts an account only under the client id pinned to it: its username.
        self._client = aiomqtt.Client(
            hostname=host,
            port=port,
            username=username,
            password=password,
            identifier=client_id if client_id is not None else username,
        )
        self._timeout = timeout
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> BrokerAdmin:
        await self._client.__aenter__()
        await self._client.subscribe(RESPONSE_TOPIC, qos=1)
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._reader is not None:
            self._reader.cancel()
        await self._client.__aexit__(exc_type, exc, tb)

    async def _read(self) -> None:
        try:
            async for message in self._client.messages:
                try:
                    body = json.loads(bytes(message.payload))
                except (ValueError, TypeError):
                    continue
                for response in body.get("responses", []):
                    future = self._pending.pop(str(response.get("correlationData")), None)
                    if future is not None and not future.done():
                        future.set_result(response)
        finally:
            # The connection is gone: waiting commands fail now instead of at their timeout.
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(BrokerAdminError("the broker connection was lost"))
            self._pending.clear()

    async def wait_closed(self) -> None:
        """Return (or raise the connection's error) when the connection drops."""
        if self._reader is not None:
            await self._reader

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1) -> None:
        """Publish on the same connection; with QoS 1, returns once the broker acknowledged."""
        try:
            await asyncio.wait_for(self._client.publish(topic, payload, qos=qos), self._timeout)
        except TimeoutError:
            raise BrokerAdminError(
                f"the broker did not acknowledge a message on {topic} within {self._timeout:.0f} s"
            ) from None

    async def command(self, **command: Any) -> dict[str, Any]:
        """Send one command and return its response; raise on an error response."""
        correlation = uuid.uuid4().hex
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[correlation] = future
        payload = json.dumps({"commands": [{**command, "correlationData": correlation}]})
        await self._client.publish(CONTROL_TOPIC, payload, qos=1)
        try:
            response = await asyncio.wait_for(future, self._timeout)
        except TimeoutError:
            raise BrokerAdminError(
                f"the broker did not answer {command['command']} within {self._timeout:.0f} s"
            ) from None
        finally:
            self._pending.pop(correlation, None)
        if error := response.get("error"):
            raise BrokerAdminError(f"{command['command']}: {error}")
        return response

    async def create_meter(self, device_id: uuid.UUID, password: str) -> None:
        role = meter_role(device_id)
        async with self._lock:
            try:
                await self.command(command="createRole", rolename=role, acls=meter_acls(device_id))
            except BrokerAdminError as exc:
                if "already exists" not in str(exc).lower():
                    raise
            try:
                await self.command(
                    command="createClient",
                    username=str(device_id),
                    password=password,
                    clientid=str(device_id),
                    textname="EMS meter",
                    roles=[{"rolename": role}],
                )
            except BrokerAdminError as exc:
                if "already exists" not in str(exc).lower():
                    raise
                # Perhaps created by an earlier release, without the pin.
                await self.command(
                    command="modifyClient", username=str(device_id), clientid=str(device_id)
                )
                await self.set_meter_password(device_id, password)

    async def set_meter_password(self, device_id: uuid.UUID, password: str) -> None:
        """Rotate: the old password stops working; a connected meter is disconnected."""
        await self.command(command="setClientPassword", username=str(device_id), password=password)
        await self.command(command="disableClient", username=str(device_id))
        await self.command(command="enableClient", username=str(device_id))

    async def delete_meter(self, device_id: uuid.UUID) -> None:
        """Revoke: the client is deleted (and disconnected), then its role."""
        for command, key, value in (
            ("deleteClient", "username", str(device_id)),
            ("deleteRole", "rolename", meter_role(device_id)),
        ):
            try:
                await self.command(command=command, **{key: value})
            except BrokerAdminError as exc:
                if "not found" not in str(exc).lower():
                    raise
