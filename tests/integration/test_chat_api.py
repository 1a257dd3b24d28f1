"""Chat API against a real PostgreSQL and Mosquitto: who sees which conversation, history pages,
read marks, limits, and text that stays text."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from portal.app import create_app
from portal.settings import PortalSettings
from tests.integration.test_portal_api import bearer, password_hash

CLIENTS = ("alice", "bob", "carol")


@dataclass
class Chat:
    client: TestClient[Any]
    headers: dict[str, dict[str, str]]
    ids: dict[str, str]
    dsn: str

    def get(self, who: str, path: str) -> Any:
        return self.client.get(path, headers=self.headers[who])

    def post(self, who: str, path: str, body: Any) -> Any:
        return self.client.post(path, json=body, headers=self.headers[who])

    def conversation(self, who: str) -> str:
        response = self.get(who, "/api/v1/conversations")
        assert response.status_code == 200, response.text
        (own,) = response.json()
        return str(own["id"])

    def say(self, who: str, conversation: str, body: str, **extra: Any) -> Any:
        return self.post(
            who, f"/api/v1/conversations/{conversation}/messages", {"body": body, **extra}
        )


def seed(dsn: str) -> dict[str, str]:
    """Three clients, an administrator, and one alert on a device of alice's and of bob's."""
    ids: dict[str, str] = {}
    with psycopg.connect(dsn) as conn:
        for name in (*CLIENTS, "root"):
            role = "admin" if name == "root" else "client"
            row = conn.execute(
                "INSERT INTO users (username, name, role, password_hash) VALUES (%s, %s, %s, %s)"
                " RETURNING id",
                (name, name.title(), role, password_hash(f"{name}-password")),
            ).fetchone()
            assert row is not None
            ids[name] = str(row[0])
        for owner in ("alice", "bob"):
            row = conn.execute(
                "INSERT INTO devices (name, max_hourly_kwh, owner_id) VALUES (%s, 2.5, %s)"
                " RETURNING id",
                (f"{owner}'s meter", ids[owner]),
            ).fetchone()
            assert row is not None
            alert = conn.execute(
                "INSERT INTO alerts (device_id, user_id, kind, hour, limit_kwh, value_kwh)"
                " VALUES (%s, %s, 'hourly_limit', '2026-11-25T10:00:00Z', 2.5, 3.1) RETURNING id",
                (row[0], ids[owner]),
            ).fetchone()
            assert alert is not None
            ids[f"alert_{owner}"] = str(alert[0])
    return ids


@pytest.fixture
def chat(portal_settings: PortalSettings) -> Iterator[Chat]:
    ids = seed(portal_settings.database_url)
    headers = {
        name: bearer(portal_settings, ids[name], "admin" if name == "root" else "client")
        for name in (*CLIENTS, "root")
    }
    with TestClient(create_app(portal_settings)) as client:
        yield Chat(client, headers, ids, portal_settings.database_url)


def test_a_client_has_one_conversation_created_on_first_use(chat: Chat) -> None:
    first = chat.get("alice", "/api/v1/conversations").json()
    assert [c["client_id"] for c in first] == [chat.ids["alice"]]
    assert first[0]["client_name"] == "Alice"
    assert first[0]["last_message_at"] is None
    assert first[0]["unread"] == 0
    assert chat.conversation("alice") == first[0]["id"]


def test_a_client_gets_404_for_another_clients_conversation(chat: Chat) -> None:
    bobs = chat.conversation("bob")
    assert chat.say("bob", bobs, "for the administrators only").status_code == 201
    nobody = str(uuid.uuid4())
    for conversation in (bobs, nobody):
        base = f"/api/v1/conversations/{conversation}"
        assert chat.get("alice", base).status_code == 404
        assert chat.get("alice", f"{base}/messages").status_code == 404
        assert chat.say("alice", conversation, "hello?").status_code == 404
        assert chat.post("alice", f"{base}/read", {"up_to": 1}).status_code == 404
    # Nothing leaked into bob's conversation, and bob's message is still unread.
    history = chat.get("bob", f"/api/v1/conversations/{bobs}/messages").json()
    assert [m["body"] for m in history["messages"]] == ["for the administrators only"]
    assert history["messages"][0]["read_at"] is None
    assert [c["id"] for c in chat.get("alice", "/api/v1/conversations").json()] != [bobs]


def test_administrators_see_every_conversation_most_recent_first_with_unread_counts(
    chat: Chat,
) -> None:
    conversations = {name: chat.conversation(name) for name in CLIENTS}
    for name, count in (("bob", 1), ("alice", 2), ("carol", 3)):
        for n in range(count):
            assert chat.say(name, conversations[name], f"{name} #{n}").status_code == 201
    listed = chat.get("root", "/api/v1/conversations").json()
    assert [c["client_name"] for c in listed] == ["Carol", "Alice", "Bob"]
    assert [c["unread"] for c in listed] == [3, 2, 1]
    assert listed[0]["last_message"] == "carol #2"
    # An administrator's answer moves the conversation to the top; the client now has unread.
    answer = chat.say("root", conversations["bob"], "Hello Bob, how can we help?")
    assert answer.status_code == 201
    assert answer.json()["sender_role"] == "admin"
    listed = chat.get("root", "/api/v1/conversations").json()
    assert [c["client_name"] for c in listed] == ["Bob", "Carol", "Alice"]
    assert chat.get("bob", "/api/v1/conversations").json()[0]["unread"] == 1
    # A client's list only ever holds their own conversation.
    assert [c["client_id"] for c in chat.get("carol", "/api/v1/conversations").json()] == [
        chat.ids["carol"]
    ]


def test_history_comes_in_pages_newest_first(chat: Chat) -> None:
    conversation = chat.conversation("alice")
    with psycopg.connect(chat.dsn) as conn:
        conn.execute(
            "INSERT INTO messages (conversation_id, sender_id, sender_role, body)"
            " SELECT %s, %s, 'client', 'message ' || n FROM generate_series(1, 120) AS n",
            (conversation, chat.ids["alice"]),
        )
    url = f"/api/v1/conversations/{conversation}/messages"
    first = chat.get("root", f"{url}?limit=50").json()
    assert [m["body"] for m in first["messages"]] == [f"message {n}" for n in range(71, 121)]
    assert first["has_more"] is True
    second = chat.get("root", f"{url}?limit=50&before={first['messages'][0]['id']}").json()
    assert [m["body"] for m in second["messages"]] == [f"message {n}" for n in range(21, 71)]
    last = chat.get("root", f"{url}?limit=50&before={second['messages'][0]['id']}").json()
    assert [m["body"] for m in last["messages"]] == [f"message {n}" for n in range(1, 21)]
    assert last["has_more"] is False
    assert len(chat.get("alice", url).json()["messages"]) == 50  # the default page
    assert chat.get("alice", f"{url}?limit=201").status_code == 400
    assert chat.get("alice", f"{url}?before=0").status_code == 400


def test_reading_marks_the_other_sides_messages_and_is_stored(chat: Chat) -> None:
    conversation = chat.conversation("alice")
    sent = [chat.say("alice", conversation, f"question {n}").json()["id"] for n in range(3)]
    answer = chat.say("root", conversation, "answer").json()["id"]
    read = f"/api/v1/conversations/{conversation}/read"

    # The client reading marks only the administrators' message.
    receipt = chat.post("alice", read, {"up_to": answer}).json()
    assert receipt["marked"] == 1
    assert receipt["up_to"] == answer
    assert receipt["reader_role"] == "client"
    # An administrator reads the first two of the client's messages.
    receipt = chat.post("root", read, {"up_to": sent[1]}).json()
    assert (receipt["marked"], receipt["up_to"]) == (2, sent[1])
    assert chat.get("root", "/api/v1/conversations").json()[0]["unread"] == 1
    # Reading again marks nothing new and keeps the first read time.
    assert chat.post("root", read, {"up_to": sent[1]}).json()["marked"] == 0

    history = chat.get("alice", f"/api/v1/conversations/{conversation}/messages").json()
    read_state = {m["id"]: m["read_at"] is not None for m in history["messages"]}
    assert read_state == {sent[0]: True, sent[1]: True, sent[2]: False, answer: True}
    assert chat.post("root", read, {"up_to": 0}).status_code == 400
    assert chat.post("root", read, {}).status_code == 400


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("x" * 4001, "4000"),
        ("", "body"),
        ("   \n ", "body"),
        ("nul \x00", "body"),
        (42, "body"),
    ],
    ids=["too-long", "empty", "blank", "nul", "not-text"],
)
def test_bad_messages_are_a_400_that_says_why(chat: Chat, body: Any, problem: str) -> None:
    conversation = chat.conversation("alice")
    response = chat.say("alice", conversation, body)
    assert response.status_code == 400, response.text
    assert problem in response.json()["detail"]


def test_the_longest_message_is_accepted(chat: Chat) -> None:
    conversation = chat.conversation("alice")
    longest = "é" * 4000  # characters, not bytes
    assert chat.say("alice", conversation, longest).json()["body"] == longest


def test_sending_is_rate_limited_per_user(chat: Chat) -> None:
    alices, bobs = chat.conversation("alice"), chat.conversation("bob")
    for n in range(20):
        assert chat.say("alice", alices, f"flood {n}").status_code == 201
    refused = chat.say("alice", alices, "one too many")
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert "too many chat messages" in refused.json()["detail"]
    assert chat.say("bob", bobs, "I am not alice").status_code == 201
    history = chat.get("alice", f"/api/v1/conversations/{alices}/messages?limit=200").json()
    assert len(history["messages"]) == 20


def test_markup_is_stored_and_shown_as_text(chat: Chat) -> None:
    conversation = chat.conversation("alice")
    body = '<script>alert("x")</script><img src=x onerror=alert(1)> & "quotes"'
    assert chat.say("alice", conversation, body).json()["body"] == body
    with psycopg.connect(chat.dsn) as conn:
        stored = conn.execute("SELECT body FROM messages").fetchone()
    assert stored == (body,)
    history = chat.get("root", f"/api/v1/conversations/{conversation}/messages").json()
    assert history["messages"][0]["body"] == body
    # The inbox page shows the preview escaped.
    chat.client.cookies.clear()
    page = chat.client.get("/admin/chat", headers=chat.headers["root"])
    assert page.status_code == 200
    assert "&lt;script&gt;alert(" in page.text
    assert "<script>alert(" not in page.text
    assert "<img src=x" not in page.text


def test_a_message_can_refer_to_one_of_the_clients_alerts(chat: Chat) -> None:
    alices = chat.conversation("alice")
    about = chat.say("alice", alices, "What happened here?", alert_id=chat.ids["alert_alice"])
    assert about.status_code == 201, about.text
    alert = about.json()["alert"]
    assert alert["id"] == chat.ids["alert_alice"]
    assert (alert["kind"], alert["device_name"]) == ("hourly_limit", "alice's meter")
    not_hers = chat.say("alice", alices, "and this?", alert_id=chat.ids["alert_bob"])
    assert not_hers.status_code == 422  # well-formed, but not an alert of hers
    assert "alert_id" in not_hers.json()["detail"]
    # An administrator may refer to the client's alerts, not another client's.
    answer = chat.say("root", alices, "That hour went over.", alert_id=chat.ids["alert_alice"])
    assert answer.status_code == 201
    assert chat.say("root", alices, "x", alert_id=chat.ids["alert_bob"]).status_code == 422

    page = chat.client.get(f"/chat?alert={chat.ids['alert_alice']}", headers=chat.headers["alice"])
    assert page.status_code == 200
    assert f'data-alert-id="{chat.ids["alert_alice"]}"' in page.text
    assert "alice&#39;s meter" in page.text
    page = chat.client.get(f"/chat?alert={chat.ids['alert_bob']}", headers=chat.headers["alice"])
    assert "data-alert-id" not in page.text
    assert "not one of yours" in page.text


def test_clients_and_administrators_each_get_their_own_chat_page(chat: Chat) -> None:
    chat.client.follow_redirects = False
    client_page = chat.client.get("/chat", headers=chat.headers["alice"])
    assert client_page.status_code == 200
    assert f'data-conversation-id="{chat.conversation("alice")}"' in client_page.text
    assert chat.client.get("/chat", headers=chat.headers["root"]).headers["location"] == (
        "/admin/chat"
    )
    assert chat.client.get("/admin/chat", headers=chat.headers["alice"]).status_code == 303
    bobs = chat.conversation("bob")
    inbox = chat.client.get(f"/admin/chat?c={bobs}", headers=chat.headers["root"])
    assert f'data-conversation-id="{bobs}"' in inbox.text
