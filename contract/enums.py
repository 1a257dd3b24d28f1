"""The shared enumerations: each one ``Literal`` type and the tuple of its values.

``Literal`` rather than ``enum.StrEnum``: values arrive as plain ``str`` from JSON and from
PostgreSQL, and stay plain ``str`` on the wire and in the database, so nothing converts them
and a comparison costs what a string comparison costs; mypy --strict still checks every use,
and msgspec validates them while decoding. The tuples (``typing.get_args``, never written out
twice) are for code that iterates the values: label maps, checks, tests. The database keeps
its own CHECK constraints; tests/integration/test_contract_schema.py proves they agree.
"""

from __future__ import annotations

from typing import Final, Literal, TypeAlias, get_args

__all__ = [
    "ALERT_EVENT_KINDS",
    "ALERT_KINDS",
    "ALERT_STATUSES",
    "DEVICE_ACTIONS",
    "HOURLY_ALERT_KINDS",
    "METER_KINDS",
    "QUALITIES",
    "STATUS_STATES",
    "AlertEventKind",
    "AlertKind",
    "AlertStatus",
    "DeviceAction",
    "HourlyAlertKind",
    "MeterKind",
    "MeterTopicKind",
    "Quality",
    "ReadingSource",
    "StatusAlertKind",
    "StatusState",
]

MeterKind: TypeAlias = Literal["cumulative", "interval"]
"""How a meter counts: a ``cumulative`` register, or the energy of each ``interval``."""
METER_KINDS: Final[tuple[MeterKind, ...]] = get_args(MeterKind)

HourlyAlertKind: TypeAlias = Literal["hourly_limit", "early_warning"]
"""Alerts about one hour's energy (they carry ``hour``)."""
HOURLY_ALERT_KINDS: Final[tuple[HourlyAlertKind, ...]] = get_args(HourlyAlertKind)
StatusAlertKind: TypeAlias = Literal["offline", "online"]
"""Alerts about a meter's connection (no ``hour``)."""
AlertKind: TypeAlias = Literal[HourlyAlertKind, StatusAlertKind]
ALERT_KINDS: Final[tuple[AlertKind, ...]] = get_args(AlertKind)

AlertStatus: TypeAlias = Literal["open", "acknowledged", "retracted"]
ALERT_STATUSES: Final[tuple[AlertStatus, ...]] = get_args(AlertStatus)

AlertEventKind: TypeAlias = Literal["raised", "updated", "retracted", "acknowledged"]
"""What happened to an alert (``AlertEvent.event``)."""
ALERT_EVENT_KINDS: Final[tuple[AlertEventKind, ...]] = get_args(AlertEventKind)

DeviceAction: TypeAlias = Literal["created", "updated", "deleted", "owner_changed"]
DEVICE_ACTIONS: Final[tuple[DeviceAction, ...]] = get_args(DeviceAction)

StatusState: TypeAlias = Literal["online", "offline"]
"""A meter's retained status (``offline`` is also its last will)."""
STATUS_STATES: Final[tuple[StatusState, ...]] = get_args(StatusState)

Quality: TypeAlias = Literal["measured", "estimated", "reset", "glitch"]
"""How an hour's energy was obtained (``hourly_energy.quality``, ``LiveEvent.quality``). The
hub's rollup ranks them with its own ``hub.energy.Quality`` (tests/unit/test_contract.py keeps
its values these)."""
QUALITIES: Final[tuple[Quality, ...]] = get_args(Quality)

# A portal user's role; chat events name the sender's and the reader's.
Role: TypeAlias = Literal["admin", "client"]
ROLES: Final[tuple[Role, ...]] = get_args(Role)

ReadingSource: TypeAlias = Literal["v1", "classic"]
"""Which payload shape a reading came in."""
MeterTopicKind: TypeAlias = Literal["readings", "status", "cmd"]
"""The last segment of a meter topic."""
