"""``GET /ws``: one WebSocket per browser tab (or API client).

Authentication: ``Authorization: Bearer …`` (API clients), else the session cookie (browsers) —
the same tokens as the HTTP API. Never a token in the URL: URLs end up in proxy access logs,
browser history and Referer headers, so ``?token=…`` is ignored. A socket without a valid token
is accepted and closed at once with code 4401 (browsers cannot read an HTTP refusal; a close
code they can). A cookie-authenticated socket must come from the portal's own origin (cookies
ride along on cross-site handshakes, so this is the WebSocket's CSRF check): otherwise 4403.

After ``{"type": "ready", ...}`` the socket receives what handlers send it; it gets
``{"type": "ping"}`` after ``KEEPALIVE_S`` of silence, when its token is also re-checked
(a logout elsewhere or a deleted user ends the socket with 4401).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any
from urllib.parse import urlsplit

from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect

from portal.auth.authenticator import Authenticator
from portal.auth.middleware import session_cookie
from portal.auth.schemas import CurrentUser
from portal.realtime.connection import Connection
from portal.realtime.core import Realtime

log = logging.getLogger("portal.realtime")

KEEPALIVE_S = 25.0
MAX_MESSAGE_CHARS = 16_384
RATE_PER_S, BURST = 20.0, 40.0
CLOSE_UNAUTHENTICATED, CLOSE_FORBIDDEN = 4401, 4403
Socket = WebSocket[Any, Any, Any]


def _token(socket: Socket) -> tuple[str | None, bool]:
    """The presented token and whether it came from the session cookie."""
    authorization = socket.headers.get("authorization", "")
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip(), False
    return session_cookie(socket.scope), True


def _same_origin(socket: Socket) -> bool:
    origin = socket.headers.get("origin")
    if origin is None:  # not a browser
        return True
    return urlsplit(origin).netloc.lower() == socket.headers.get("host", "").lower()


async def _identify(socket: Socket, authenticator: Authenticator) -> tuple[CurrentUser, str] | int:
    token, from_cookie = _token(socket)
    found = await authenticator.authenticate(token) if token else None
    if found is None or token is None:
        return CLOSE_UNAUTHENTICATED
    if from_cookie and not _same_origin(socket):
        return CLOSE_FORBIDDEN
    return found[0], token


async def _write(connection: Connection, authenticator: Authenticator) -> None:
    while True:
        try:
            async with asyncio.timeout(KEEPALIVE_S):
                text = await connection.next_text()
        except TimeoutError:
            if await authenticator.authenticate(connection.token) is None:
                connection.close(CLOSE_UNAUTHENTICATED)
                continue
            text = '{"type":"ping"}'
        if text is None:
            with contextlib.suppress(Exception):  # the browser may be gone already
                await connection.socket.close(connection.close_code)
            return
        await connection.socket.send_data(text)


async def _read(connection: Connection, realtime: Realtime) -> None:
    allowance, last = BURST, time.monotonic()
    while True:
        try:
            text = await connection.socket.receive_data("text")
        except WebSocketDisconnect:
            return
        now = time.monotonic()
        allowance = min(BURST, allowance + (now - last) * RATE_PER_S)
        last = now
        if allowance < 1:
            await connection.send({"type": "error", "detail": "too many messages; slow down"})
            continue
        allowance -= 1
        try:
            message = json.loads(text) if len(text) <= MAX_MESSAGE_CHARS else None
        except ValueError:
            message = None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            await connection.send(
                {"type": "error", "detail": 'send one JSON object with a "type", up to 16 KB'}
            )
            continue
        await realtime.dispatch(connection, message)


@websocket("/ws", opt={"public": True})  # public to the guards: it authenticates itself
async def realtime_socket(socket: Socket) -> None:
    realtime: Realtime = socket.app.state.realtime
    authenticator: Authenticator = socket.app.state.authenticator
    identified = await _identify(socket, authenticator)
    await socket.accept()
    if isinstance(identified, int):
        reason = "sign in first" if identified == CLOSE_UNAUTHENTICATED else "wrong origin"
        await socket.close(identified, reason)
        return
    user, token = identified
    connection = Connection(socket, user, token)
    realtime.attach(connection)
    await connection.send(
        {
            "type": "ready",
            "user_id": str(user.id),
            "role": user.role,
            "replica": realtime.settings.instance_id,
            "events": realtime.subscribed,
        }
    )
    tasks = [
        asyncio.create_task(_write(connection, authenticator)),
        asyncio.create_task(_read(connection, realtime)),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        realtime.detach(connection)
        connection.close()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
