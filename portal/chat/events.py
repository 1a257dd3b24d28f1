"""Chat events on ``ems/v1/events/chat/{conversation_id}`` (portal → portals): the wire format.

Every replica receives every chat event (topic semantics) and hands it to its own sockets: the
conversation's client and all administrators. JSON, one object, ``kind`` says which:

    {"kind": "message", "conversation_id": …, "client_id": …, "message": {MessageOut}}
    {"kind": "typing",  "conversation_id": …, "client_id": …, "sender_id": …,
                        "sender_role": "admin"|"client", "typing": true|false}
    {"kind": "read",    "conversation_id": …, "client_id": …, "reader_id": …,
                        "reader_role": "admin"|"client", "up_to": <message id>, "read_at": …}

Browsers receive the same object with ``"type": "chat.<kind>"`` in place of ``kind``.
Pure: no I/O here.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec

from contract.topics import chat_topic
from portal.auth.schemas import Role
from portal.chat.schemas import MessageOut

MAX_EVENT_BYTES = 64 * 1024


class _Event(msgspec.Struct, kw_only=True, tag_field="kind"):
    conversation_id: uuid.UUID
    client_id: uuid.UUID


class MessageEvent(_Event, tag="message"):
    message: MessageOut


class TypingEvent(_Event, tag="typing"):
    sender_id: uuid.UUID
    sender_role: Role
    typing: bool


class ReadEvent(_Event, tag="read"):
    reader_id: uuid.UUID
    reader_role: Role
    up_to: int
    read_at: datetime


ChatEvent = MessageEvent | TypingEvent | ReadEvent
_decoder = msgspec.json.Decoder(ChatEvent)


def event_topic(event: ChatEvent) -> str:
    return chat_topic(event.conversation_id)


def encode_event(event: ChatEvent) -> bytes:
    return msgspec.json.encode(event)


def decode_event(topic: str, payload: bytes | str) -> ChatEvent:
    """The event, or ValueError: malformed, too large, or not about the topic's conversation."""
    if len(payload) > MAX_EVENT_BYTES:
        raise ValueError(f"chat event of {len(payload)} bytes is larger than {MAX_EVENT_BYTES}")
    try:
        event: ChatEvent = _decoder.decode(payload)
    except msgspec.DecodeError as exc:
        raise ValueError(f"malformed chat event: {exc}") from None
    if topic != event_topic(event):
        raise ValueError(f"chat event for {event.conversation_id} arrived on {topic}")
    return event


def for_browser(event: ChatEvent) -> dict[str, Any]:
    """The WebSocket message: the event with ``type: "chat.<kind>"`` instead of ``kind``."""
    fields: dict[str, Any] = msgspec.to_builtins(event)
    return {"type": f"chat.{fields.pop('kind')}", **fields}
