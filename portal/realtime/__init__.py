"""Realtime: MQTT events in, WebSocket messages out — the layer dashboards, alerts and chat
build on.

Realtime API
============

``create_app`` builds one ``Realtime`` and stores it in ``app.state["realtime"]`` (handlers:
``request.app.state.realtime``); the lifespan runs it. Register handlers in ``create_app``
(or an ``install_*(realtime)`` function it calls), before the app starts.

Server side::

    realtime.on_topic("ems/v1/events/chat/", handler)   # handler(topic: str, payload: bytes)
    realtime.on_client_message("chat.", handler)        # handler(conn: Connection, msg: dict)
    await realtime.send_to_user(user_id, {"type": "chat.message", ...})
    await realtime.send_to_admins({"type": ..., ...})
    await realtime.send_to_user_and_admins(owner_id_or_None, {...})
    await realtime.publish("ems/v1/events/chat/<id>", payload_bytes, qos=1)

* One MQTT connection per replica subscribes to ``ems/v1/events/alerts/+``,
  ``ems/v1/events/live/+``, ``ems/v1/events/chat/+``, ``ems/v1/meters/+/status`` and
  ``ems/v1/events/devices`` (topic semantics: every replica gets every event). Handlers run
  one at a time in arrival order: keep them quick. Retained messages replayed on (re)subscribe
  are skipped — they are old state, not events.
* ``send_*`` reach sockets on THIS replica only, and never block (each socket has a bounded
  queue; one that stops reading is closed, and its page reconnects).
* Cross-replica fan-out: ``publish`` to MQTT and deliver from your ``on_topic`` handler — the
  publishing replica receives its own event back that way too, so deliver only from there
  (delivering before publishing as well would show it twice). ``publish`` raises
  ``ServiceUnavailable`` if the broker stays unreachable for ``broker_wait_s``.
* ``Connection``: ``.user_id`` (UUID), ``.role`` ("admin" | "client"), ``.is_admin``,
  ``.time_zone``, ``.user`` (CurrentUser), ``await .send(dict)``. ``realtime.recipients(user_id)``
  gives the sockets ``send_to_user_and_admins`` would use, for per-socket messages.
* A handler's exception is logged; a browser message whose handler fails gets
  ``{"type": "error", "detail": ...}``, as does one of an unknown type.

Socket: ``GET /ws`` — session cookie or ``Authorization: Bearer`` (never in the URL); anonymous →
closed with 4401, cookie from another origin → 4403. Server → browser (JSON objects)::

    {"type": "ready", "user_id", "role", "replica", "events": bool}   first, once
    {"type": "alert", "event": "raised"|"updated"|"retracted", "alert": {...}, "unread": n}
    {"type": "live", device_id, ts, energy_kwh, power_w, hour, hour_kwh, quality,
                     max_hourly_kwh, owner_id}
    {"type": "device_status", "device_id", "state": "online"|"offline", "ts"}
    {"type": "ping"} (idle keepalive)   {"type": "pong"} (answers {"type": "ping"})
    {"type": "error", "detail"}

Live and status go to the device's owner and administrators; alerts to the alert's user and
administrators (the nil-UUID topic: administrators only).

Browser: the ES module ``/static/realtime.js`` (every signed-in page's entry module imports it)
keeps one socket per tab with reconnect (exponential backoff with jitter)::

    import {realtime} from "./realtime.js";
    realtime.on("chat.message", (msg) => ...);   // "*" receives everything
    realtime.send({type: "chat.typing", conversation_id: ...});  // queued if offline
    realtime.on("open", fn) / on("close", fn)    // connection state, e.g. to refetch
"""

from __future__ import annotations

from portal.realtime.connection import Connection
from portal.realtime.core import ClientHandler, Realtime, TopicHandler

__all__ = ["ClientHandler", "Connection", "Realtime", "TopicHandler"]
