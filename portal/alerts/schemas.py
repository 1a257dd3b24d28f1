"""Shapes of the alerts API and of the ``alert`` socket message (the same ``AlertOut``)."""

from __future__ import annotations

import msgspec

from contract.payloads import AlertFacts


class AlertOut(AlertFacts, kw_only=True):
    """One alert as a person sees it (the stored alert of contract.payloads.AlertFacts, with its
    device's name): ``text`` is in the reader's time zone."""

    device_name: str
    owner: str | None = None  # the device owner's user name
    text: str = ""


class AlertPage(msgspec.Struct, kw_only=True):
    """Newest first. ``unread`` counts the caller's open alerts, whatever the filters."""

    items: list[AlertOut]
    total: int
    unread: int
    limit: int
    offset: int


class UnreadCount(msgspec.Struct, kw_only=True):
    unread: int
