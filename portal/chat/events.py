"""Chat events on ``ems/v1/events/chat/{conversation_id}`` (portal → portals), as browsers get
them. The structs and their codec are the contract's (``contract.payloads``, ``contract.codec``).

Every replica receives every chat event (topic semantics) and hands it to its own sockets: the
conversation's client and all administrators. JSON, one object, ``kind`` says which:

    {"kind": "message", "conversation_id": …, "client_id": …, "message": {ChatMessage}}
    {"kind": "typing",  "conversation_id": …, "client_id": …, "sender_id": …,
                        "sender_role": "admin"|"client", "typing": true|false}
    {"kind": "read",    "conversation_id": …, "client_id": …, "reader_id": …,
                        "reader_role": "admin"|"client", "up_to": <message id>, "read_at": …}

Browsers receive the same object with ``"type": "chat.<kind>"`` in place of ``kind``.
Pure: no I/O here.
"""

from __future__ import annotations

from typing import Any

import msgspec

from contract.payloads import ChatEvent


def for_browser(event: ChatEvent) -> dict[str, Any]:
    """The WebSocket message: the event with ``type: "chat.<kind>"`` instead of ``kind``."""
    fields: dict[str, Any] = msgspec.to_builtins(event)
    return {"type": f"chat.{fields.pop('kind')}", **fields}
