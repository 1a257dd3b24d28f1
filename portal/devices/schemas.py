"""Device shapes, and the DeviceEvent (contract.payloads) a device's state turns into."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

from contract.enums import DeviceAction, MeterKind
from contract.payloads import DeviceEvent
from portal.validation import NO_NUL_PATTERN, VISIBLE_TEXT_PATTERN, check_text, documented

DeviceName = Annotated[
    str,
    msgspec.Meta(
        min_length=1, max_length=200, extra_json_schema=documented(pattern=VISIBLE_TEXT_PATTERN)
    ),
]
Description = Annotated[
    str, msgspec.Meta(max_length=2000, extra_json_schema=documented(pattern=NO_NUL_PATTERN))
]
Address = Annotated[
    str, msgspec.Meta(max_length=500, extra_json_schema=documented(pattern=NO_NUL_PATTERN))
]
# Upper bounds keep values finite (JSON 1e999 decodes to infinity) and plausible. The lower
# bound is stated twice: Litestar drops gt=0 from optional fields' schemas (a truthiness test).
MaxHourlyKwh = Annotated[
    float,
    msgspec.Meta(
        gt=0,
        le=1e6,
        description="alert limit for one hour's energy, kWh",
        extra_json_schema=documented(exclusiveMinimum=0),
    ),
]
RatedPowerW = Annotated[
    float,
    msgspec.Meta(
        gt=0,
        le=1e9,
        description="deltas implying more power are quarantined",
        extra_json_schema=documented(exclusiveMinimum=0),
    ),
]
IntervalS = Annotated[int, msgspec.Meta(ge=1, le=86_400, description="reading interval, seconds")]


class DeviceOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    name: str
    description: str
    address: str
    max_hourly_kwh: float
    meter_kind: MeterKind
    rated_power_w: float | None
    interval_s: int
    owner_id: uuid.UUID | None
    owner_username: str | None
    credentials_rotated_at: datetime | None
    created_at: datetime
    updated_at: datetime

    def event(self, action: DeviceAction) -> DeviceEvent:
        return DeviceEvent(
            action=action,
            device_id=self.id,
            owner_id=self.owner_id,
            max_hourly_kwh=self.max_hourly_kwh,
            meter_kind=self.meter_kind,
            rated_power_w=self.rated_power_w,
            interval_s=self.interval_s,
        )


class MeterCredentials(msgspec.Struct, kw_only=True):
    """Shown once: the portal keeps no copy of the password."""

    device_id: uuid.UUID
    mqtt_username: str
    mqtt_password: str
    rotated_at: datetime


class DeviceCreated(DeviceOut, kw_only=True):
    mqtt_username: str
    mqtt_password: str


def _check(name: str | msgspec.UnsetType, description: object, address: object) -> None:
    for field, value in (("name", name), ("description", description), ("address", address)):
        if isinstance(value, str):
            check_text(field, value)
    if isinstance(name, str) and not name.strip():
        raise ValueError("name must not be blank")


class DeviceCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: DeviceName
    max_hourly_kwh: MaxHourlyKwh
    description: Description = ""
    address: Address = ""
    meter_kind: MeterKind = "cumulative"
    rated_power_w: RatedPowerW | None = None
    interval_s: IntervalS = 600

    def __post_init__(self) -> None:
        _check(self.name, self.description, self.address)


class DeviceUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Only the fields present change; ``rated_power_w: null`` clears it."""

    name: DeviceName | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType = msgspec.UNSET
    address: Address | msgspec.UnsetType = msgspec.UNSET
    max_hourly_kwh: MaxHourlyKwh | msgspec.UnsetType = msgspec.UNSET
    meter_kind: MeterKind | msgspec.UnsetType = msgspec.UNSET
    rated_power_w: RatedPowerW | msgspec.UnsetType | None = msgspec.UNSET
    interval_s: IntervalS | msgspec.UnsetType = msgspec.UNSET

    def __post_init__(self) -> None:
        _check(self.name, self.description, self.address)

    def changes(self) -> dict[str, object]:
        return {
            field: value
            for field in self.__struct_fields__
            if (value := getattr(self, field)) is not msgspec.UNSET
        }


class OwnerAssignment(msgspec.Struct, forbid_unknown_fields=True):
    owner_id: uuid.UUID | None
