"""Browser hardening headers on every HTTP response the portal sends.

The Content-Security-Policy allows scripts, styles, images, fonts and connections (fetch, the
WebSocket) from the portal's own origin only: no inline <script>, no inline event handler, no
inline style attribute, nothing from a CDN (front-end packages are served from /static/vendor).
An HTML injection that slipped past escaping therefore cannot run script. The portal is never
framed (clickjacking), never sends its URLs to other sites, and content types are not sniffed.
"""

from __future__ import annotations

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        # 'self' covers the same-origin WebSocket (ws:/wss:) in CSP Level 3 browsers.
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers without CSP 2
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
}


async def add_security_headers(message: Message, scope: Scope) -> None:
    """A ``before_send`` hook: it sees every response, errors and 404s included."""
    if message["type"] != "http.response.start":
        return
    headers = MutableScopeHeaders.from_message(message)
    for name, value in SECURITY_HEADERS.items():
        if name not in headers:
            headers[name] = value
