"""Chat between clients and the administrators: real time, persisted, typing and read receipts.

One conversation per client with the administrators, created on first use. The administrators
are one side: any of them answers, and what one of them reads is read for all of them.

HTTP (``portal.chat.controllers``; a client who names another client's conversation gets 404)::

    GET  /api/v1/conversations[?limit=100]
         administrators: every conversation, most recent first; a client: a list holding their
         own conversation, created by this call if they had none. Each item:
         {id, client_id, client_username, client_name, created_at, last_message_at,
          last_message (first 140 characters), unread}
         ``unread``: the other side's messages the caller's side has not read.
    GET  /api/v1/conversations/{id}                     one item as above
    GET  /api/v1/conversations/{id}/messages?before=<message id>&limit=50 (≤ 200)
         {"messages": [oldest … newest], "has_more": bool} — the newest page first; pass the
         first id of a page as ``before`` to get the one before it.
    POST /api/v1/conversations/{id}/messages  {"body": "…", "alert_id": "<uuid>"?}  → 201
         {id, conversation_id, sender_id, sender_role, sender_name, body, alert_id,
          alert: {id, kind, device_id, device_name, hour, raised_at} | null, created_at, read_at}
         body: 1–4000 characters, not blank (else 400); alert_id: one of the conversation's
         client's alerts (else 400); 20 messages per user every 10 s (else 429, Retry-After).
    POST /api/v1/conversations/{id}/read  {"up_to": <message id>}  → 200
         marks the other side's messages up to that id read (``read_at``) and sends a receipt:
         {conversation_id, reader_role, marked, up_to (highest id marked) | null, read_at}

MQTT (``portal.chat.events``): ``ems/v1/events/chat/{conversation_id}``, QoS 1, JSON objects
with ``kind`` "message" | "typing" | "read"; every replica delivers them to its own sockets.

WebSocket (``/ws``): browsers receive ``{"type": "chat.message" | "chat.typing" |
"chat.read", …}`` (the MQTT event, ``type`` in place of ``kind``) and send
``{"type": "chat.typing", "conversation_id": …, "typing": true | false}`` while writing.

Pages (``portal.chat.pages``): ``/chat`` for clients (``?alert=<id>`` starts a message about
that alert), ``/admin/chat`` for administrators (``?c=<id>`` opens a conversation).
"""
