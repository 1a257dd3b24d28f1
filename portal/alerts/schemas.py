"""Shapes of the alerts API and of the ``alert`` socket message (the same ``AlertOut``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

import msgspec

AlertStatus = Literal["open", "acknowledged", "retracted"]
AlertKind = Literal["hourly_limit", "early_warning", "offline", "online"]


class AlertFacts(msgspec.Struct, kw_only=True):
    """An alert row as the hub wrote it (the ``ems/v1/events/alerts/…`` payload has these)."""

    id: uuid.UUID
    device_id: uuid.UUID
    user_id: uuid.UUID | None
    kind: str
    hour: datetime | None
    limit_kwh: float | None
    value_kwh: float | None
    projected_kwh: float | None
    final_kwh: float | None
    late: bool
    status: str
    raised_at: datetime
    updated_at: datetime


class AlertOut(AlertFacts, kw_only=True):
    """One alert as a person sees it: ``text`` is in the reader's time zone."""

    device_name: str
    owner: str | None = None  # the device owner's user name
    acknowledged_at: datetime | None = None
    acknowledged_by: uuid.UUID | None = None
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
