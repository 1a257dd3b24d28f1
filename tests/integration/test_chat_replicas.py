"""Chat over real WebSockets against real portal processes (`python -m portal`) sharing one
PostgreSQL and one Mosquitto: an administrator with three clients at once, a client and an
administrator on different replicas, and a history that outlives the portal. Also alert
acknowledgements, which reach the user's tabs on every replica the same way."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from devkit.helpers import wait_for
from devkit.live_portal import LivePortal
from ems.broker import portal_user
from portal.settings import PortalSettings
from tests.integration.test_chat_api import CLIENTS, seed
from tests.integration.test_portal_api import bearer

Event = dict[str, Any]


def subscribed(portal: LivePortal) -> bool:
    health = httpx.get(f"{portal.url}/health", timeout=2).json()
    return bool(health.get("events") == "subscribed")


@pytest.fixture
def people(portal_settings: PortalSettings) -> dict[str, Any]:
    ids = seed(portal_settings.database_url)
    tokens = {
        name: bearer(portal_settings, ids[name], "admin" if name == "root" else "client")
        for name in (*CLIENTS, "root")
    }
    return {"ids": ids, "headers": tokens}


@pytest.fixture
def replicas(
    request: pytest.FixtureRequest, portal_settings: PortalSettings, tmp_path: Path
) -> Iterator[list[LivePortal]]:
    """``@pytest.mark.parametrize("replicas", [n], indirect=True)``: n portals, one database
    and one broker."""
    count: int = getattr(request, "param", 2)
    with contextlib.ExitStack() as stack:
        portals = []
        for n in range(count):
            # Each replica its own broker account, as in production (pinned client ids).
            settings = dataclasses.replace(portal_settings, mqtt_username=portal_user(n + 1))
            portal = stack.enter_context(LivePortal(settings, tmp_path / f"portal-{n}.log"))
            portals.append(portal)
        for portal in portals:
            # Events published before a replica subscribes never reach it: wait for it.
            wait_for(lambda p=portal: subscribed(p), timeout=20, what=f"{portal.url} to subscribe")
        yield portals


class Socket:
    """A signed-in WebSocket on /ws that keeps what it receives, in order."""

    def __init__(self, portal: LivePortal, headers: dict[str, str]) -> None:
        self._connect = connect(
            portal.url.replace("http://", "ws://") + "/ws", additional_headers=headers
        )
        self.received: list[Event] = []

    def __enter__(self) -> Socket:
        self.ws: ClientConnection = self._connect.__enter__()
        assert self._next()["type"] == "ready"
        return self

    def __exit__(self, *exc: object) -> None:
        self._connect.__exit__(None, None, None)

    def _next(self, timeout: float = 10) -> Event:
        event: Event = json.loads(self.ws.recv(timeout=timeout))
        return event

    def typing(self, conversation: str, typing: bool = True) -> None:
        self.ws.send(
            json.dumps({"type": "chat.typing", "conversation_id": conversation, "typing": typing})
        )

    def until(self, match: Callable[[Event], bool], what: str, timeout: float = 10) -> Event:
        """Receive until an event matches (everything received is kept in ``received``)."""
        try:
            while True:
                event = self._next(timeout)
                if event["type"].startswith("chat."):
                    self.received.append(event)
                if match(event):
                    return event
        except TimeoutError:
            raise AssertionError(f"no {what} within {timeout} s; got {self.received}") from None

    def chat(self) -> list[tuple[str, str, str]]:
        """(type, conversation, body or role) of every chat event received so far."""
        return [
            (
                e["type"],
                e["conversation_id"],
                e["message"]["body"] if e["type"] == "chat.message" else e.get("sender_role", ""),
            )
            for e in self.received
        ]


def message(body: str) -> Callable[[Event], bool]:
    return lambda e: e["type"] == "chat.message" and e["message"]["body"] == body


def read_by(role: str) -> Callable[[Event], bool]:
    return lambda e: e["type"] == "chat.read" and e["reader_role"] == role


class Api:
    def __init__(self, portal: LivePortal, people: dict[str, Any]) -> None:
        self.http = httpx.Client(base_url=portal.url, timeout=10)
        self.headers: dict[str, dict[str, str]] = people["headers"]

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def conversation(self, who: str) -> str:
        (own,) = self.http.get("/api/v1/conversations", headers=self.headers[who]).json()
        return str(own["id"])

    def say(self, who: str, conversation: str, body: str) -> Event:
        response = self.http.post(
            f"/api/v1/conversations/{conversation}/messages",
            json={"body": body},
            headers=self.headers[who],
        )
        assert response.status_code == 201, response.text
        sent: Event = response.json()
        return sent

    def read(self, who: str, conversation: str, up_to: int) -> Event:
        response = self.http.post(
            f"/api/v1/conversations/{conversation}/read",
            json={"up_to": up_to},
            headers=self.headers[who],
        )
        assert response.status_code == 200, response.text
        receipt: Event = response.json()
        return receipt

    def history(self, who: str, conversation: str) -> list[str]:
        response = self.http.get(
            f"/api/v1/conversations/{conversation}/messages", headers=self.headers[who]
        )
        assert response.status_code == 200, response.text
        return [m["body"] for m in response.json()["messages"]]


@pytest.mark.parametrize("replicas", [1], indirect=True)
def test_an_administrator_chats_with_three_clients_at_once(
    replicas: list[LivePortal], people: dict[str, Any]
) -> None:
    portal = replicas[0]
    with contextlib.ExitStack() as stack:
        api = stack.enter_context(Api(portal, people))
        admin = stack.enter_context(Socket(portal, people["headers"]["root"]))
        clients = {
            name: stack.enter_context(Socket(portal, people["headers"][name])) for name in CLIENTS
        }
        talk_to_three_clients(api, admin, clients)


def talk_to_three_clients(api: Api, admin: Socket, clients: dict[str, Socket]) -> None:
    conversations = {name: api.conversation(name) for name in CLIENTS}

    for name in CLIENTS:
        api.say(name, conversations[name], f"hi from {name}")
    for name in CLIENTS:
        admin.until(message(f"hi from {name}"), f"{name}'s message at the administrator")
    admin.typing(conversations["alice"])
    clients["alice"].until(lambda e: e["type"] == "chat.typing", "the administrator typing")
    # A client cannot type into someone else's conversation (nor learn that it exists).
    clients["bob"].typing(conversations["alice"])
    refused = clients["bob"].until(lambda e: e["type"] == "error", "bob's typing refused")
    assert refused["detail"] == f"conversation {conversations['alice']} not found"
    for name in CLIENTS:
        api.say("root", conversations[name], f"reply to {name}")
    # Each client's last message is a marker: the events of one replica arrive in order, so
    # anything misrouted to a client would have reached it before its own marker.
    for name in CLIENTS:
        api.say(name, conversations[name], f"done {name}")
    for name, socket in clients.items():
        socket.until(message(f"done {name}"), f"{name}'s marker")
        own = conversations[name]
        expected = [
            ("chat.message", own, f"hi from {name}"),
            *([("chat.typing", own, "admin")] if name == "alice" else []),
            ("chat.message", own, f"reply to {name}"),
            ("chat.message", own, f"done {name}"),
        ]
        assert socket.chat() == expected
    for name in CLIENTS:
        admin.until(message(f"done {name}"), f"{name}'s marker at the administrator")
    for name in CLIENTS:
        own = [body for kind, c, body in admin.chat() if c == conversations[name]]
        assert [b for b in own if b != "admin"] == [
            f"hi from {name}",
            f"reply to {name}",
            f"done {name}",
        ]


def test_chat_flows_between_a_client_and_an_administrator_on_different_replicas(
    replicas: list[LivePortal], people: dict[str, Any]
) -> None:
    here, there = replicas
    with contextlib.ExitStack() as stack:
        client_api = stack.enter_context(Api(here, people))
        admin_api = stack.enter_context(Api(there, people))
        alice = stack.enter_context(Socket(here, people["headers"]["alice"]))
        admin = stack.enter_context(Socket(there, people["headers"]["root"]))
        talk_across_replicas(client_api, admin_api, alice, admin, people["ids"]["alice"])


def talk_across_replicas(
    client_api: Api, admin_api: Api, alice: Socket, admin: Socket, alice_id: str
) -> None:
    conversation = client_api.conversation("alice")

    def typing(state: bool, role: str) -> Callable[[Event], bool]:
        return lambda e: (
            e["type"] == "chat.typing" and e["typing"] is state and e["sender_role"] == role
        )

    alice.typing(conversation)
    seen = admin.until(typing(True, "client"), "alice typing, on the other replica")
    assert seen["conversation_id"] == conversation
    alice.typing(conversation, False)
    admin.until(typing(False, "client"), "alice stopping")
    question = client_api.say("alice", conversation, "My meter is offline, why?")
    arrived = admin.until(message("My meter is offline, why?"), "alice's message")
    assert arrived["message"]["id"] == question["id"]
    assert arrived["client_id"] == alice_id

    admin_api.read("root", conversation, question["id"])
    receipt = alice.until(read_by("admin"), "the administrator's receipt")
    assert receipt["up_to"] == question["id"]

    admin.typing(conversation)
    alice.until(typing(True, "admin"), "the administrator typing")
    answer = admin_api.say("root", conversation, "It lost its network; it is back now.")
    alice.until(message("It lost its network; it is back now."), "the answer")
    client_api.read("alice", conversation, answer["id"])
    receipt = admin.until(read_by("client"), "alice's receipt")
    assert receipt["up_to"] == answer["id"]
    assert all(e["conversation_id"] == conversation for e in alice.received + admin.received)


def test_history_outlives_a_portal_restart(
    portal_settings: PortalSettings, people: dict[str, Any], tmp_path: Path
) -> None:
    bodies = ["before the restart", "<script>alert('x')</script>"]
    with LivePortal(portal_settings, tmp_path / "first.log") as first, Api(first, people) as api:
        conversation = api.conversation("alice")
        for body in bodies:
            api.say("alice", conversation, body)
    with LivePortal(portal_settings, tmp_path / "second.log") as second, Api(second, people) as api:
        assert api.conversation("alice") == conversation
        assert api.history("alice", conversation) == bodies
        assert api.history("root", conversation) == bodies


def test_an_acknowledgement_reaches_every_replicas_tabs(
    replicas: list[LivePortal], people: dict[str, Any]
) -> None:
    one, two = replicas
    headers, ids = people["headers"], people["ids"]

    def acknowledged(alert: str) -> Callable[[Event], bool]:
        return lambda e: (
            e["type"] == "alert" and e["event"] == "acknowledged" and e["alert"]["id"] == alert
        )

    with (
        Socket(two, headers["alice"]) as alice_tab,
        Socket(two, headers["bob"]) as bob_tab,
        Socket(one, headers["root"]) as admin_tab,
        httpx.Client(base_url=one.url, timeout=10) as api,
    ):
        # Alice acknowledges on replica one; her tab on replica two hears of it.
        response = api.post(f"/api/v1/alerts/{ids['alert_alice']}/ack", headers=headers["alice"])
        assert response.status_code == 200, response.text
        event = alice_tab.until(acknowledged(ids["alert_alice"]), "alice's acknowledgement")
        assert event["alert"]["status"] == "acknowledged"
        assert event["alert"]["acknowledged_by"] == ids["alice"]
        assert event["unread"] == 0  # her bell, counted for her
        assert admin_tab.until(acknowledged(ids["alert_alice"]), "the admin's copy")["unread"] == 1
        # Bob's own acknowledgement is the first alert event his tab gets: never alice's.
        api.post(f"/api/v1/alerts/{ids['alert_bob']}/ack", headers=headers["bob"])
        first = bob_tab.until(lambda e: e["type"] == "alert", "bob's acknowledgement")
        assert first["alert"]["id"] == ids["alert_bob"]
