"""contract: topics and the v1 payload codec (ARCHITECTURE.md §3)."""

from __future__ import annotations

import json
import math
import pickle
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract.codec import (
    decode_alert_event,
    decode_cmd,
    decode_device_event,
    decode_status,
    encode_alert_event,
    encode_cmd_config,
    encode_cmd_resend,
    encode_device_event,
    encode_status,
)
from contract.fields import format_ts
from contract.payloads import AlertEvent, ConfigCmd, DeviceEvent, Reading, ResendCmd
from contract.readings import (
    MAX_BATCH,
    MAX_POWER_W,
    MAX_REGISTER_KWH,
    _decode_general,
    _decode_typed,
    decode_readings,
    decode_readings_partial,
    encode_classic,
    encode_reading,
    encode_readings,
)
from contract.reasons import DecodeError, truncate_payload
from contract.topics import (
    ALERTS_SUB,
    CHAT_SUB,
    DEVICE_EVENTS_TOPIC,
    LIVE_SUB,
    READINGS_SUB,
    STATUS_SUB,
    alerts_topic,
    chat_topic,
    cmd_topic,
    live_topic,
    parse_meter_topic,
    readings_shared_sub,
    readings_topic,
    status_topic,
)

pytestmark = pytest.mark.unit

DEV = UUID("5c2494a3-1b2c-4d5e-8f90-a1b2c3d4e5f6")
DEV_S = str(DEV)
OTHER = UUID("0f0e0d0c-0b0a-4908-8706-050403020100")
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
T10 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
MS_1000 = 1764064800000  # 2025-11-25T10:00:00Z

REASON_RE = re.compile(
    r"empty_payload|invalid_json|not_object|empty_batch|batch_too_large|device_mismatch"
    r"|bad_timestamp|future_timestamp|negative_energy|non_finite"
    r"|(missing_field|bad_type|bad_value|out_of_range):[a-z_]+"
)


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _decode(payload: bytes, **kwargs: Any) -> list[Reading]:
    return decode_readings(DEV, payload, now=NOW, **kwargs)


# ------------------------------------------------------------------------------------------
# Topics
# ------------------------------------------------------------------------------------------


def test_topic_constants() -> None:
    assert readings_shared_sub("hub") == "$share/hub/ems/v1/meters/+/readings"
    assert READINGS_SUB == "ems/v1/meters/+/readings"
    assert STATUS_SUB == "ems/v1/meters/+/status"
    assert DEVICE_EVENTS_TOPIC == "ems/v1/events/devices"
    assert ALERTS_SUB == "ems/v1/events/alerts/+"
    assert LIVE_SUB == "ems/v1/events/live/+"
    assert CHAT_SUB == "ems/v1/events/chat/+"


@pytest.mark.parametrize(
    ("built", "expected"),
    [
        (readings_topic(DEV), f"ems/v1/meters/{DEV_S}/readings"),
        (readings_topic(DEV_S.upper()), f"ems/v1/meters/{DEV_S}/readings"),
        (status_topic(DEV), f"ems/v1/meters/{DEV_S}/status"),
        (cmd_topic(DEV_S), f"ems/v1/meters/{DEV_S}/cmd"),
        (alerts_topic(OTHER), f"ems/v1/events/alerts/{OTHER}"),
        (live_topic(DEV), f"ems/v1/events/live/{DEV_S}"),
        (chat_topic(OTHER), f"ems/v1/events/chat/{OTHER}"),
        (chat_topic(42), "ems/v1/events/chat/42"),
    ],
)
def test_topic_builders(built: str, expected: str) -> None:
    assert built == expected


@pytest.mark.parametrize("bad", ["", "not-a-uuid", "+", "#", "a/b"])
def test_topic_builders_reject_non_uuid(bad: str) -> None:
    with pytest.raises(ValueError, match="UUID"):
        readings_topic(bad)
    with pytest.raises(ValueError, match="UUID"):
        chat_topic(bad)


def test_chat_topic_rejects_negative_and_bool() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        chat_topic(-1)
    with pytest.raises(TypeError):
        chat_topic(True)


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        (f"ems/v1/meters/{DEV_S}/readings", (DEV, "readings")),
        (f"ems/v1/meters/{DEV_S}/status", (DEV, "status")),
        (f"ems/v1/meters/{DEV_S}/cmd", (DEV, "cmd")),
        (f"ems/v1/meters/{DEV_S.upper()}/readings", None),  # not canonical
        (f"ems/v1/meters/{DEV.hex}/readings", None),  # no hyphens
        (f"ems/v1/meters/{{{DEV_S}}}/readings", None),  # braces
        ("ems/v1/meters/not-a-uuid/readings", None),
        ("ems/v1/meters/+/readings", None),
        (f"ems/v1/meters/{DEV_S}/other", None),
        (f"ems/v1/meters/{DEV_S}", None),
        (f"ems/v1/meters/{DEV_S}/readings/", None),
        (f"ems/v1/meters/{DEV_S}/readings/x", None),
        (f"ems/v2/meters/{DEV_S}/readings", None),
        (f"/ems/v1/meters/{DEV_S}/readings", None),
        (f"$share/hub/ems/v1/meters/{DEV_S}/readings", None),
        (f"ems/v1/events/live/{DEV_S}", None),
        ("ems/v1/events/devices", None),
        ("", None),
    ],
)
def test_parse_meter_topic(topic: str, expected: tuple[UUID, str] | None) -> None:
    assert parse_meter_topic(topic) == expected


@given(st.uuids())
def test_parse_meter_topic_inverts_builders(device_id: UUID) -> None:
    assert parse_meter_topic(readings_topic(device_id)) == (device_id, "readings")
    assert parse_meter_topic(status_topic(device_id)) == (device_id, "status")
    assert parse_meter_topic(cmd_topic(device_id)) == (device_id, "cmd")


@given(st.text())
def test_parse_meter_topic_never_raises(topic: str) -> None:
    result = parse_meter_topic(topic)
    assert result is None or topic == f"ems/v1/meters/{result[0]}/{result[1]}"


# ------------------------------------------------------------------------------------------
# Readings: accepted payloads
# ------------------------------------------------------------------------------------------


def test_design_classic_message_decodes() -> None:
    payload = _json({"timestamp": 1570654800000, "device_id": DEV_S, "measurement_value": 0.1})
    assert decode_readings(DEV, payload, now=NOW) == [
        Reading(DEV, datetime(2019, 10, 9, 21, 0, tzinfo=UTC), 0.1, None, None, "classic")
    ]


def test_design_v1_example_decodes() -> None:
    payload = b'{"ts": "2026-11-25T10:00:00Z", "seq": 42, "energy_kwh": 1234.567, "power_w": 812.5}'
    [r] = _decode(payload)
    assert r == Reading(DEV, T10, 1234.567, 42, 812.5, "v1")
    assert r.ts.tzinfo is UTC


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"ts": "2026-11-25T10:00:00Z", "energy_kwh": 1}, Reading(DEV, T10, 1.0)),
        ({"ts": "2026-11-25T11:30:00+01:30", "energy_kwh": 0}, Reading(DEV, T10, 0.0)),
        ({"ts": "2026-11-25T05:00:00-05:00", "energy_kwh": 2.5}, Reading(DEV, T10, 2.5)),
        ({"ts": "2026-11-25T10:00:00-00:00", "energy_kwh": 2.5}, Reading(DEV, T10, 2.5)),
        ({"ts": "2026-11-25t10:00:00z", "energy_kwh": 2.5}, Reading(DEV, T10, 2.5)),
        ({"ts": "2026-11-25 10:00:00Z", "energy_kwh": 2.5}, Reading(DEV, T10, 2.5)),
        (
            {"ts": "2026-11-25T10:00:00.123456789Z", "energy_kwh": 2.5},
            Reading(DEV, T10.replace(microsecond=123456), 2.5),
        ),
        (
            {"ts": "2026-11-25T10:00:00.5Z", "energy_kwh": 2.5},
            Reading(DEV, T10.replace(microsecond=500000), 2.5),
        ),
        (
            {"ts": MS_1000 + 7, "energy_kwh": 2.5},
            Reading(DEV, datetime(2025, 11, 25, 10, 0, 0, 7000, tzinfo=UTC), 2.5),
        ),
        ({"ts": 0, "energy_kwh": 2.5}, Reading(DEV, datetime(1970, 1, 1, tzinfo=UTC), 2.5)),
        (
            {"ts": "2026-11-25T10:00:00Z", "energy_kwh": 1, "seq": None, "power_w": None},
            Reading(DEV, T10, 1.0),
        ),
        (
            {"ts": "2026-11-25T10:00:00Z", "energy_kwh": 1, "seq": 0, "power_w": -5},
            Reading(DEV, T10, 1.0, 0, -5.0),
        ),
        (
            {"ts": "2026-11-25T10:00:00Z", "energy_kwh": -0.0, "seq": 2**63 - 1},
            Reading(DEV, T10, 0.0, 2**63 - 1),
        ),
        (
            {"ts": "2026-11-25T10:00:00Z", "energy_kwh": 1, "extra": [1, {"x": None}]},
            Reading(DEV, T10, 1.0),
        ),
        ({"ts": "2026-11-25T10:00:00Z", "energy_kwh": 1, "device_id": DEV_S}, Reading(DEV, T10, 1)),
        (
            {"ts": "2026-11-25T10:00:00Z", "energy_kwh": 1, "device_id": DEV_S.upper()},
            Reading(DEV, T10, 1.0),
        ),
        ({"ts": "2026-11-25T10:00:00Z", "energy_kwh": 1, "device_id": None}, Reading(DEV, T10, 1)),
        # an object with both v1 and classic keys is v1
        (
            {"ts": "2026-11-25T10:00:00Z", "energy_kwh": 3, "measurement_value": 9, "timestamp": 0},
            Reading(DEV, T10, 3.0),
        ),
        # classic without device_id: the topic is the authority
        (
            {"timestamp": MS_1000, "measurement_value": 7},
            Reading(DEV, datetime(2025, 11, 25, 10, tzinfo=UTC), 7.0, source="classic"),
        ),
        # classic extra v1-looking fields are ignored
        (
            {"timestamp": MS_1000, "measurement_value": 7, "seq": "x", "power_w": "y"},
            Reading(DEV, datetime(2025, 11, 25, 10, tzinfo=UTC), 7.0, source="classic"),
        ),
    ],
)
def test_decode_accepts(obj: dict[str, Any], expected: Reading) -> None:
    [r] = _decode(_json(obj))
    assert r == expected
    assert r.ts.tzinfo is UTC
    assert type(r.energy_kwh) is float
    assert r.power_w is None or type(r.power_w) is float


def test_decode_array_of_v1_and_classic() -> None:
    payload = _json(
        [
            {"ts": "2026-11-25T10:00:00Z", "seq": 1, "energy_kwh": 1.0},
            {"ts": "2026-11-25T10:15:00Z", "seq": 2, "energy_kwh": 1.25},
            {"timestamp": MS_1000, "device_id": DEV_S, "measurement_value": 0.1},
        ]
    )
    assert _decode(payload) == [
        Reading(DEV, T10, 1.0, 1),
        Reading(DEV, T10 + timedelta(minutes=15), 1.25, 2),
        Reading(DEV, datetime(2025, 11, 25, 10, tzinfo=UTC), 0.1, source="classic"),
    ]


def test_decode_accepts_buffer_types() -> None:
    payload = _json({"ts": "2026-11-25T10:00:00Z", "energy_kwh": 1})
    assert _decode(payload) == decode_readings(DEV, bytearray(payload), now=NOW)
    assert _decode(payload) == decode_readings(DEV, memoryview(payload), now=NOW)


def test_batch_limits() -> None:
    one = {"ts": "2026-11-25T10:00:00Z", "energy_kwh": 1}
    assert len(_decode(_json([one] * MAX_BATCH))) == MAX_BATCH
    with pytest.raises(DecodeError) as info:
        _decode(_json([one] * (MAX_BATCH + 1)))
    assert info.value.reason == "batch_too_large"
    assert len(_decode(_json([one] * 3), max_batch=3)) == 3
    with pytest.raises(DecodeError) as info:
        _decode(_json([one] * 4), max_batch=3)
    assert info.value.reason == "batch_too_large"


def test_future_limit_is_inclusive_and_configurable() -> None:
    at_limit = NOW + timedelta(minutes=5)
    payload = encode_reading(Reading(DEV, at_limit, 1.0))
    assert _decode(payload)[0].ts == at_limit
    past_limit = encode_reading(Reading(DEV, at_limit + timedelta(milliseconds=1), 1.0))
    with pytest.raises(DecodeError) as info:
        _decode(past_limit)
    assert info.value.reason == "future_timestamp"
    assert _decode(past_limit, max_future=timedelta(minutes=6))[0].ts > at_limit
    # now in another zone is the same instant
    elsewhere = NOW.astimezone(timezone(timedelta(hours=-7)))
    assert decode_readings(DEV, payload, now=elsewhere)[0].ts == at_limit


def test_now_near_datetime_max_does_not_overflow() -> None:
    end = datetime.max.replace(tzinfo=UTC)
    [r] = decode_readings(DEV, b'{"ts": "9999-12-31T23:59:59Z", "energy_kwh": 1}', now=end)
    assert r.ts == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware") as info:
        decode_readings(DEV, b"{}", now=NOW.replace(tzinfo=None))
    assert not isinstance(info.value, DecodeError)


# ------------------------------------------------------------------------------------------
# Readings: rejected payloads, one table case per reason
# ------------------------------------------------------------------------------------------

V1 = {"ts": "2026-11-25T10:00:00Z", "seq": 1, "energy_kwh": 1.5, "power_w": 10.0}


def _v1(**changes: Any) -> bytes:
    obj: dict[str, Any] = {**V1, **changes}
    return _json({k: v for k, v in obj.items() if v is not ...})


def _classic(**changes: Any) -> bytes:
    obj: dict[str, Any] = {"timestamp": MS_1000, "device_id": DEV_S, "measurement_value": 0.1}
    obj.update(changes)
    return _json({k: v for k, v in obj.items() if v is not ...})


REJECTS: list[tuple[str, bytes, str]] = [
    ("empty", b"", "empty_payload"),
    ("garbage", b"hello", "invalid_json"),
    ("truncated", b'{"ts": "2026-11-25T10:00:00Z", "energy_kwh": 1', "invalid_json"),
    ("trailing data", b'{"ts": 0, "energy_kwh": 1} {}', "invalid_json"),
    ("NaN token", b'{"ts": 0, "energy_kwh": NaN}', "invalid_json"),
    ("Infinity token", b'{"ts": 0, "energy_kwh": Infinity}', "invalid_json"),
    ("invalid utf-8", b'{"ts": "\xff", "energy_kwh": 1}', "invalid_json"),
    ("utf-8 BOM", b'\xef\xbb\xbf{"ts": 0, "energy_kwh": 1}', "invalid_json"),
    ("lone surrogate", b'{"ts": "\\ud800", "energy_kwh": 1}', "invalid_json"),
    ("deep nesting", b"[" * 5000 + b"]" * 5000, "invalid_json"),
    ("string", b'"reading"', "not_object"),
    ("number", b"1.5", "not_object"),
    ("null", b"null", "not_object"),
    ("true", b"true", "not_object"),
    ("array of numbers", b"[1, 2]", "not_object"),
    ("nested array", b'[[{"ts": 0, "energy_kwh": 1}]]', "not_object"),
    ("empty array", b"[]", "empty_batch"),
    ("too many", _json([V1] * (MAX_BATCH + 1)), "batch_too_large"),
    ("empty object", b"{}", "missing_field:ts"),
    ("no ts", _v1(ts=...), "missing_field:ts"),
    ("no energy", _v1(energy_kwh=...), "missing_field:energy_kwh"),
    ("classic no timestamp", _classic(timestamp=...), "missing_field:timestamp"),
    ("classic no value", _classic(measurement_value=...), "missing_field:measurement_value"),
    ("ts null", _v1(ts=None), "bad_type:ts"),
    ("ts float", _v1(ts=1764064800000.0), "bad_type:ts"),
    ("ts bool", _v1(ts=True), "bad_type:ts"),
    ("ts object", _v1(ts={"s": 1}), "bad_type:ts"),
    ("classic ts float", _classic(timestamp=1.5e12), "bad_type:timestamp"),
    ("energy string", _v1(energy_kwh="1.5"), "bad_type:energy_kwh"),
    ("energy null", _v1(energy_kwh=None), "bad_type:energy_kwh"),
    ("energy true", _v1(energy_kwh=True), "bad_type:energy_kwh"),
    ("energy false", _v1(energy_kwh=False), "bad_type:energy_kwh"),
    ("energy list", _v1(energy_kwh=[1]), "bad_type:energy_kwh"),
    ("classic value bool", _classic(measurement_value=True), "bad_type:measurement_value"),
    ("seq float", _v1(seq=1.0), "bad_type:seq"),
    ("seq bool", _v1(seq=True), "bad_type:seq"),
    ("seq string", _v1(seq="1"), "bad_type:seq"),
    ("seq negative", _v1(seq=-1), "bad_value:seq"),
    ("seq beyond bigint", _v1(seq=2**63), "bad_value:seq"),
    ("power string", _v1(power_w="1"), "bad_type:power_w"),
    ("power bool", _v1(power_w=False), "bad_type:power_w"),
    ("device_id int", _v1(device_id=5), "bad_type:device_id"),
    ("device_id other", _v1(device_id=str(OTHER)), "device_mismatch"),
    ("device_id not uuid", _v1(device_id="meter-1"), "device_mismatch"),
    ("classic other device", _classic(device_id=str(OTHER)), "device_mismatch"),
    ("future", _v1(ts="2026-11-25T12:05:00.001Z"), "future_timestamp"),
    ("future epoch ms", _classic(timestamp=1893456000000), "future_timestamp"),
    ("future via offset", _v1(ts="2026-11-25T12:10:00+00:00"), "future_timestamp"),
    ("naive ts", _v1(ts="2026-11-25T10:00:00"), "bad_timestamp"),
    ("date only", _v1(ts="2026-11-25"), "bad_timestamp"),
    ("basic format", _v1(ts="20261125T100000Z"), "bad_timestamp"),
    ("week date", _v1(ts="2026-W48-3T10:00:00Z"), "bad_timestamp"),
    ("offset without colon", _v1(ts="2026-11-25T10:00:00+0100"), "bad_timestamp"),
    ("no seconds", _v1(ts="2026-11-25T10:00Z"), "bad_timestamp"),
    ("empty fraction", _v1(ts="2026-11-25T10:00:00.Z"), "bad_timestamp"),
    ("10-digit fraction", _v1(ts="2026-11-25T10:00:00.1234567890Z"), "bad_timestamp"),
    ("february 30", _v1(ts="2026-02-30T10:00:00Z"), "bad_timestamp"),
    ("hour 24", _v1(ts="2026-11-25T24:00:00Z"), "bad_timestamp"),
    ("leap second", _v1(ts="2016-12-31T23:59:60Z"), "bad_timestamp"),
    ("offset 24h", _v1(ts="2026-11-25T10:00:00+24:00"), "bad_timestamp"),
    ("unicode digits", _v1(ts="２０２６-11-25T10:00:00Z"), "bad_timestamp"),
    ("trailing space", _v1(ts="2026-11-25T10:00:00Z "), "bad_timestamp"),
    ("year 0 in UTC", _v1(ts="0001-01-01T00:00:00+01:00"), "bad_timestamp"),
    ("epoch ms overflow", _v1(ts=10**20), "bad_timestamp"),
    ("epoch ms underflow", _v1(ts=-(10**20)), "bad_timestamp"),
    ("empty ts", _v1(ts=""), "bad_timestamp"),
    ("negative energy", _v1(energy_kwh=-0.001), "negative_energy"),
    ("negative int energy", _v1(energy_kwh=-1), "negative_energy"),
    ("classic negative", _classic(measurement_value=-5), "negative_energy"),
    ("energy 1e400", b'{"ts": 0, "energy_kwh": 1e400}', "non_finite"),
    ("power -1e400", b'{"ts": 0, "energy_kwh": 1, "power_w": -1e400}', "non_finite"),
    ("energy huge int", b'{"ts": 0, "energy_kwh": 1' + b"0" * 400 + b"}", "non_finite"),
    (
        "power huge int",
        b'{"ts": 0, "energy_kwh": 1, "power_w": -1' + b"0" * 400 + b"}",
        "non_finite",
    ),
    # Finite, but no meter reports them (issue 13: a stored 1e308 broke the sums downstream).
    ("energy 1e308", _v1(energy_kwh=1e308), "out_of_range:energy_kwh"),
    ("energy just above the register", _v1(energy_kwh=1e9 + 0.5), "out_of_range:energy_kwh"),
    ("energy big int", _v1(energy_kwh=10**18), "out_of_range:energy_kwh"),
    ("classic 1e308", _classic(measurement_value=1e308), "out_of_range:measurement_value"),
    ("power 1e308", _v1(power_w=1e308), "out_of_range:power_w"),
    ("power above the ceiling", _v1(power_w=1.5e8), "out_of_range:power_w"),
    ("power below minus the ceiling", _v1(power_w=-1.5e8), "out_of_range:power_w"),
]


@pytest.mark.parametrize(
    ("payload", "reason"), [(p, r) for _, p, r in REJECTS], ids=[i for i, _, _ in REJECTS]
)
def test_decode_rejects(payload: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        _decode(payload)
    assert info.value.reason == reason
    assert REASON_RE.fullmatch(info.value.reason)
    assert str(info.value)  # a human message


def test_batch_is_all_or_nothing_and_names_the_element() -> None:
    good = {"ts": "2026-11-25T10:00:00Z", "energy_kwh": 1}
    payload = _json([good, good, {**good, "energy_kwh": -1}, good])
    with pytest.raises(DecodeError) as info:
        _decode(payload)
    assert info.value.reason == "negative_energy"
    assert info.value.index == 2
    assert str(info.value).startswith("element 2: ")
    with pytest.raises(DecodeError) as info:
        _decode(_json([good, 7]))
    assert (info.value.reason, info.value.index) == ("not_object", 1)


def test_bounds_are_inclusive_and_the_power_ceiling_configurable() -> None:
    [r] = _decode(_v1(energy_kwh=MAX_REGISTER_KWH, power_w=-MAX_POWER_W))
    assert (r.energy_kwh, r.power_w) == (MAX_REGISTER_KWH, -MAX_POWER_W)
    assert _decode(_v1(power_w=2e8), max_power_w=2e8)[0].power_w == 2e8
    with pytest.raises(DecodeError) as info:
        _decode(_v1(power_w=5001.0), max_power_w=5000.0)
    assert info.value.reason == "out_of_range:power_w"


def test_a_bad_element_is_rejected_alone_with_its_index_and_text() -> None:
    good = {"ts": "2026-11-25T10:00:00Z", "energy_kwh": 1}
    later = {"ts": "2026-11-25T10:10:00Z", "energy_kwh": 2}
    readings, rejected = decode_readings_partial(
        DEV, _json([good, {"ts": "bad"}, later, 7]), now=NOW
    )
    assert [r.energy_kwh for r in readings] == [1.0, 2.0]
    assert [(e.reason, e.index, e.element) for e in rejected] == [
        ("missing_field:energy_kwh", 1, '{"ts":"bad"}'),
        ("not_object", 3, "7"),
    ]
    assert rejected[0].message.startswith("element 1: ")


def test_a_whole_payload_error_stays_whole() -> None:
    good = {"ts": "2026-11-25T10:00:00Z", "energy_kwh": 1}
    for payload, reason in (
        (b'{"ts": "bad", "energy_kwh": 1}', "bad_timestamp"),  # a single object
        (_json([good] * (MAX_BATCH + 1)), "batch_too_large"),
        (b'"readings"', "not_object"),
        (b"[", "invalid_json"),
    ):
        with pytest.raises(DecodeError) as info:
            decode_readings_partial(DEV, payload, now=NOW)
        assert (info.value.reason, info.value.index, info.value.element) == (reason, None, None)


def test_a_rejected_element_is_cut_to_an_excerpt() -> None:
    good = {"ts": "2026-11-25T10:00:00Z", "energy_kwh": 1}
    huge = {"ts": "2026-11-25T10:00:00Z", "energy_kwh": -1, "note": "x" * 5000}
    _, [bad] = decode_readings_partial(DEV, _json([good, huge]), now=NOW)
    assert bad.element is not None
    assert bad.element.startswith('{"ts":"2026-11-25T10:00:00Z","energy_kwh":-1')
    assert bad.element.endswith("bytes)")
    assert len(bad.element.encode()) < 600


def test_single_object_error_has_no_index() -> None:
    with pytest.raises(DecodeError) as info:
        _decode(_v1(energy_kwh="x"))
    assert info.value.index is None
    assert "energy_kwh" in info.value.message


def test_decode_error_is_value_error_and_pickles() -> None:
    err = DecodeError("bad_type:ts", "element 3: ts must be ...", 3, '{"ts":1.5}')
    assert isinstance(err, ValueError)
    copy = pickle.loads(pickle.dumps(err))  # noqa: S301 - our own bytes
    assert (copy.reason, copy.message, copy.index, copy.element, str(copy)) == (
        "bad_type:ts",
        "element 3: ts must be ...",
        3,
        '{"ts":1.5}',
        "element 3: ts must be ...",
    )
    assert str(DecodeError("invalid_json")) == "invalid_json"


# ------------------------------------------------------------------------------------------
# Readings: encoding
# ------------------------------------------------------------------------------------------


def test_encode_reading_exact_bytes() -> None:
    r = Reading(DEV, T10, 1234.567, 42, 812.5)
    assert encode_reading(r) == (
        b'{"ts":"2026-11-25T10:00:00.000Z","seq":42,"energy_kwh":1234.567,"power_w":812.5}'
    )
    assert (
        encode_reading(Reading(DEV, T10, 1))
        == b'{"ts":"2026-11-25T10:00:00.000Z","energy_kwh":1.0}'
    )


@pytest.mark.parametrize(
    ("ts", "text"),
    [
        (T10.replace(microsecond=123000), "2026-11-25T10:00:00.123Z"),
        (T10.replace(microsecond=123456), "2026-11-25T10:00:00.123456Z"),  # never lossy
        (
            datetime(2026, 11, 25, 11, tzinfo=timezone(timedelta(hours=1))),
            "2026-11-25T10:00:00.000Z",
        ),
        (datetime(5, 1, 2, 3, 4, 5, tzinfo=UTC), "0005-01-02T03:04:05.000Z"),
    ],
)
def test_encode_reading_timestamp_format(ts: datetime, text: str) -> None:
    assert json.loads(encode_reading(Reading(DEV, ts, 1.0)))["ts"] == text


@pytest.mark.parametrize(
    "bad",
    [
        Reading(DEV, T10.replace(tzinfo=None), 1.0),
        Reading(DEV, T10, -1.0),
        Reading(DEV, T10, math.nan),
        Reading(DEV, T10, math.inf),
        Reading(DEV, T10, 1.0, seq=-1),
        Reading(DEV, T10, 1.0, seq=2**63),
        Reading(DEV, T10, 1.0, power_w=math.inf),
    ],
)
def test_encode_reading_refuses_invalid(bad: Reading) -> None:
    with pytest.raises(ValueError, match="must be"):
        encode_reading(bad)


def test_encode_readings_array_bounds() -> None:
    r = Reading(DEV, T10, 1.0)
    assert _decode(encode_readings([r, r])) == [r, r]
    assert len(_decode(encode_readings([r] * MAX_BATCH))) == MAX_BATCH
    with pytest.raises(ValueError, match=r"1\.\.1000"):
        encode_readings([])
    with pytest.raises(ValueError, match=r"1\.\.1000"):
        encode_readings([r] * (MAX_BATCH + 1))


def test_encode_classic_exact_bytes() -> None:
    expected = (
        b'{"timestamp":1570654800000,"device_id":"' + DEV_S.encode() + b'","measurement_value":0.1}'
    )
    assert encode_classic(DEV, 1570654800000, 0.1) == expected
    assert encode_classic(DEV_S, datetime(2019, 10, 9, 21, 0, tzinfo=UTC), 0.1) == expected
    truncated = datetime(2019, 10, 9, 21, 0, 0, 999, tzinfo=UTC)  # sub-ms is cut
    assert encode_classic(DEV, truncated, 0.1) == expected
    with pytest.raises(ValueError, match="timezone-aware"):
        encode_classic(DEV, datetime(2019, 10, 9, 21, 0, tzinfo=UTC).replace(tzinfo=None), 0.1)
    with pytest.raises(ValueError, match="energy"):
        encode_classic(DEV, 0, -0.5)


# ------------------------------------------------------------------------------------------
# Readings: properties
# ------------------------------------------------------------------------------------------

offsets = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# year 2 .. 9998, so that any fixed offset stays inside datetime's range
_LO_US = (datetime(2, 1, 1, tzinfo=UTC) - EPOCH) // timedelta(microseconds=1)
_HI_US = (datetime(9998, 12, 31, tzinfo=UTC) - EPOCH) // timedelta(microseconds=1)
timestamps = st.integers(_LO_US, _HI_US).map(lambda us: EPOCH + timedelta(microseconds=us))
ms_timestamps = st.integers(_LO_US // 1000, _HI_US // 1000).map(
    lambda ms: EPOCH + timedelta(milliseconds=ms)
)
finite = st.floats(allow_nan=False, allow_infinity=False)
energies = st.floats(min_value=0.0, max_value=MAX_REGISTER_KWH, allow_nan=False)
powers = st.floats(min_value=-MAX_POWER_W, max_value=MAX_POWER_W, allow_nan=False)
END = datetime.max.replace(tzinfo=UTC)


def readings(ts: st.SearchStrategy[datetime] = ms_timestamps) -> st.SearchStrategy[Reading]:
    return st.builds(
        Reading,
        device_id=st.just(DEV),
        ts=st.builds(lambda t, tz: t.astimezone(tz), ts, offsets),
        energy_kwh=energies,
        seq=st.none() | st.integers(0, 2**63 - 1),
        power_w=st.none() | powers,
        source=st.just("v1"),
    )


@given(readings())
def test_roundtrip_single(r: Reading) -> None:
    [back] = decode_readings(DEV, encode_reading(r), now=END)
    assert back == r
    assert back.ts.tzinfo is UTC


@given(readings(timestamps))
def test_roundtrip_microseconds_too(r: Reading) -> None:
    assert decode_readings(DEV, encode_reading(r), now=END) == [r]


@settings(deadline=None)
@given(st.lists(readings(), min_size=1, max_size=50))
def test_roundtrip_batch(rs: list[Reading]) -> None:
    assert decode_readings(DEV, encode_readings(rs), now=END) == rs


@settings(deadline=None)
@given(st.lists(readings(timestamps), min_size=1, max_size=20), st.booleans())
def test_typed_fast_path_takes_valid_v1_and_agrees(rs: list[Reading], single: bool) -> None:
    # The hub's hot path must actually take well-formed v1 payloads (it is the speed-up), and
    # give what the general decoder gives for them.
    payload = encode_reading(rs[0]) if single else encode_readings(rs)
    want = rs[:1] if single else rs
    assert _decode_typed(DEV, payload, END, MAX_BATCH) == want
    assert _decode_general(DEV, payload, END, MAX_BATCH) == (want, [])


def _dict_form(r: Reading) -> bytes:
    """The encoder as it was (a dict through msgspec, ``format_ts``): the bytes it gives."""
    obj: dict[str, Any] = {"ts": format_ts(r.ts)}
    if r.seq is not None:
        obj["seq"] = r.seq
    obj["energy_kwh"] = float(r.energy_kwh)
    if r.power_w is not None:
        obj["power_w"] = float(r.power_w)
    return msgspec.json.encode(obj)


@settings(deadline=None)
@given(st.lists(readings(timestamps) | readings(ms_timestamps), min_size=1, max_size=10))
def test_the_encoders_write_exactly_the_bytes_of_the_plain_dict_form(rs: list[Reading]) -> None:
    # encode_reading takes shortcuts (a struct, isoformat for UTC): the payload must not move
    # by a byte, in UTC or not, whole milliseconds or not.
    for r in [*rs, *(msgspec.structs.replace(r, ts=r.ts.astimezone(UTC)) for r in rs)]:
        assert encode_reading(r) == _dict_form(r)
    assert encode_readings(rs) == b"[" + b",".join(_dict_form(r) for r in rs) + b"]"


BAD_ELEMENTS = [
    {"ts": "bad", "energy_kwh": 1},
    {"ts": 0, "energy_kwh": 1e308},
    {"ts": 0, "energy_kwh": -1},
    {"ts": 0, "energy_kwh": 1, "power_w": 1e12},
    {"ts": 0},
    {"ts": "9999-12-31T23:59:59Z", "energy_kwh": 1},
    {"ts": 0, "energy_kwh": 1, "device_id": str(OTHER)},
    7,
    None,
    [1],
]


@settings(deadline=None)
@given(
    st.lists(readings(timestamps), min_size=0, max_size=20),
    st.lists(st.tuples(st.integers(0, 20), st.sampled_from(BAD_ELEMENTS)), min_size=1, max_size=5),
)
def test_partial_acceptance_keeps_the_good_elements_in_order(
    rs: list[Reading], bad: list[tuple[int, Any]]
) -> None:
    # Bad elements spliced into a valid flush: the typed fast path declines it; the general
    # decoder returns every good reading, in order, and each bad element with its own index.
    items: list[Any] = [json.loads(encode_reading(r)) for r in rs]
    for at, element in bad:
        items.insert(min(at, len(items)), element)
    payload = _json(items)
    limit = NOW + timedelta(minutes=5)
    assert _decode_typed(DEV, payload, limit, MAX_BATCH) is None
    good = [r for r in rs if r.ts <= limit]
    readings_, rejected = _decode_general(DEV, payload, limit, MAX_BATCH)
    assert readings_ == good
    assert len(readings_) + len(rejected) == len(items)
    assert [e.index for e in rejected] == sorted(e.index for e in rejected)
    for e in rejected:
        assert e.index is not None
        assert e.element is not None
        assert json.loads(e.element) == items[e.index]
        assert REASON_RE.fullmatch(e.reason)
    assert decode_readings_partial(DEV, payload, now=NOW)[0] == good
    _check_outcome(payload)


@pytest.mark.parametrize(
    "payload",
    [
        encode_classic(DEV, MS_1000, 1.5),  # the classic message: the general decoder's
        b'{"ts": "2026-11-25T10:00:00Z"}',
        b'{"ts": "2026-11-25T10:00:00Z", "energy_kwh": 1, "seq": -1}',
        b'{"ts": "2026-11-25T10:00:00Z", "energy_kwh": 1, "device_id": "x"}',
        b'{"ts": "2026-11-25T10:00:00", "energy_kwh": 1}',
        b'{"ts": "2099-11-25T10:00:00Z", "energy_kwh": 1}',
        b"[]",
        b'{"ts": "2026-11-25T10:00:00Z", "energy_kwh": 1e999}',
        b'{"ts": "2026-11-25T10:00:00Z", "energy_kwh": 1e308}',
        b'{"ts": "2026-11-25T10:00:00Z", "energy_kwh": 1, "power_w": -1e300}',
        b'[{"ts": "2026-11-25T10:00:00Z", "energy_kwh": 1}, {"ts": "bad", "energy_kwh": 1}]',
        # Invalid UTF-8 in a key the typed decoder would skip unread (found by the fuzzing).
        b'{"ts": "2026-11-25T10:00:00Z", "energy_kwh": 1, "p\xfd": 0}',
    ],
)
def test_typed_fast_path_declines_the_rest(payload: bytes) -> None:
    assert _decode_typed(DEV, payload, NOW + timedelta(minutes=5), MAX_BATCH) is None
    _check_outcome(payload)


@given(st.integers(-62135596800000 + 86400000, 253402300799999), energies)
def test_roundtrip_classic(ms: int, value: float) -> None:
    [r] = decode_readings(DEV, encode_classic(DEV, ms, value), now=END)
    assert r.source == "classic"
    assert r.energy_kwh == value
    assert (r.ts - EPOCH) // timedelta(milliseconds=1) == ms
    assert encode_classic(DEV, r.ts, r.energy_kwh) == encode_classic(DEV, ms, value)


def _error(exc: DecodeError) -> tuple[str, str, int | None, str | None]:
    return (exc.reason, exc.message, exc.index, exc.element)  # DecodeErrors compare by identity


def _outcome(decode: Any, payload: bytes) -> tuple[str, Any]:
    try:
        result = decode(DEV, payload, NOW + timedelta(minutes=5), MAX_BATCH)
    except DecodeError as exc:
        return "error", _error(exc)
    if type(result) is tuple:  # (readings, rejected elements)
        return "ok", (result[0], [_error(e) for e in result[1]])
    return "ok", result


def _check_outcome(payload: bytes) -> None:
    """Decoding either yields valid readings (and rejected elements, each with a known reason)
    or raises DecodeError with a known reason; the typed fast path either declines or gives
    exactly what the general decoder gives, with nothing rejected; the strict decoder raises
    the first rejected element."""
    general = _outcome(_decode_general, payload)
    typed = _decode_typed(DEV, payload, NOW + timedelta(minutes=5), MAX_BATCH)
    if typed is not None:
        assert general == ("ok", (typed, []))
    partial = _outcome(lambda d, p, _limit, _n: decode_readings_partial(d, p, now=NOW), payload)
    assert partial == general
    strict = _outcome(lambda d, p, _limit, _n: decode_readings(d, p, now=NOW), payload)
    kind, result = general
    if kind == "error":
        assert strict == general
        assert REASON_RE.fullmatch(result[0]), result
        assert result[2] is None  # a whole-payload error names no element
        return
    readings_, rejected = result
    assert 1 <= len(readings_) + len(rejected) <= MAX_BATCH
    if rejected:
        assert strict == ("error", rejected[0])
    else:
        assert strict == ("ok", readings_)
    for reason, message, index, element in rejected:
        assert REASON_RE.fullmatch(reason), reason
        assert message.startswith(f"element {index}: ")
        assert isinstance(element, str)
    for r in readings_:
        assert r.device_id == DEV
        assert r.ts.tzinfo is UTC
        assert r.ts <= NOW + timedelta(minutes=5)
        assert math.isfinite(r.energy_kwh)
        assert 0 <= r.energy_kwh <= MAX_REGISTER_KWH
        assert r.seq is None or 0 <= r.seq < 2**63
        assert r.power_w is None or -MAX_POWER_W <= r.power_w <= MAX_POWER_W
        assert r.source in ("v1", "classic")


@settings(max_examples=300)
@given(st.binary(max_size=512))
def test_fuzz_arbitrary_bytes(payload: bytes) -> None:
    _check_outcome(payload)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=300)
@given(json_values)
def test_fuzz_arbitrary_json(value: Any) -> None:
    _check_outcome(json.dumps(value).encode())


field_values = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(0, 2**63 + 10)
    | st.integers(MS_1000 - 10**12, MS_1000 + 10**11)
    | st.floats()
    | st.text(max_size=40)
    | st.sampled_from(
        [DEV_S, DEV_S.upper(), str(OTHER), "2026-11-25T10:00:00Z", "2026-11-25T10:00:00"]
    )
    | ms_timestamps.map(lambda t: t.isoformat())
    | st.lists(st.integers(), max_size=2)
)
reading_like = st.dictionaries(
    st.sampled_from(
        ["ts", "energy_kwh", "seq", "power_w", "device_id", "timestamp", "measurement_value", "x"]
    ),
    field_values,
)


@settings(max_examples=500)
@given(reading_like | st.lists(reading_like, max_size=4))
def test_fuzz_reading_shaped_json(value: Any) -> None:
    _check_outcome(json.dumps(value).encode())


v1_like = st.fixed_dictionaries(
    {
        "ts": ms_timestamps.map(lambda t: t.isoformat()) | st.integers(MS_1000 - 10**12, MS_1000),
        "energy_kwh": st.integers() | st.floats() | st.integers(2**53 - 2, 2**53 + 2),
    },
    optional=dict.fromkeys(("seq", "power_w", "device_id", "timestamp", "x"), field_values),
)


@settings(max_examples=500)
@given(v1_like | st.lists(v1_like, min_size=1, max_size=4))
def test_fuzz_v1_shaped_json(value: Any) -> None:
    # Mostly decodable: where the typed fast path answers, it must agree value for value.
    _check_outcome(json.dumps(value).encode())


@given(st.lists(readings(), min_size=1, max_size=5), st.data())
def test_fuzz_mutated_valid_payload(rs: list[Reading], data: st.DataObject) -> None:
    payload = bytearray(encode_readings(rs))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(payload) - 1))
        payload[pos] = data.draw(st.integers(0, 255))
    _check_outcome(bytes(payload))


# ------------------------------------------------------------------------------------------
# Status
# ------------------------------------------------------------------------------------------


def test_status_roundtrip_and_bytes() -> None:
    assert encode_status("online", T10) == b'{"state":"online","ts":"2026-11-25T10:00:00.000Z"}'
    assert encode_status("offline", None) == b'{"state":"offline"}'
    assert decode_status(encode_status("online", T10)) == ("online", T10)
    assert decode_status(encode_status("offline", None)) == ("offline", None)
    assert decode_status(b'{"state": "offline", "ts": null, "x": 1}') == ("offline", None)
    assert decode_status(b'{"state": "online", "ts": 1764064800000}') == (
        "online",
        datetime(2025, 11, 25, 10, tzinfo=UTC),
    )


def test_encode_status_refuses_invalid() -> None:
    with pytest.raises(ValueError, match="state"):
        encode_status("gone", T10)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timezone-aware"):
        encode_status("online", T10.replace(tzinfo=None))


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "empty_payload"),  # a cleared retained message
        (b"online", "invalid_json"),
        (b'"online"', "not_object"),
        (b'[{"state": "online"}]', "not_object"),
        (b"{}", "missing_field:state"),
        (b'{"state": true}', "bad_type:state"),
        (b'{"state": "ONLINE"}', "bad_value:state"),
        (b'{"state": "online", "ts": "2026-11-25T10:00:00"}', "bad_timestamp"),
        (b'{"state": "online", "ts": 1.5}', "bad_type:ts"),
    ],
)
def test_decode_status_rejects(payload: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_status(payload)
    assert info.value.reason == reason


# ------------------------------------------------------------------------------------------
# Commands
# ------------------------------------------------------------------------------------------


def test_cmd_roundtrip_and_bytes() -> None:
    assert encode_cmd_resend(42) == b'{"cmd":"resend","from_seq":42}'
    assert encode_cmd_config(60) == b'{"cmd":"config","interval_s":60}'
    assert decode_cmd(encode_cmd_resend(0)) == ResendCmd(0)
    assert decode_cmd(encode_cmd_config(1)) == ConfigCmd(1)
    assert decode_cmd(b'{"cmd": "resend", "from_seq": 7, "extra": 1}') == ResendCmd(from_seq=7)


@given(st.integers(0, 2**63 - 1), st.integers(1, 2**63 - 1))
def test_cmd_roundtrip_property(from_seq: int, interval_s: int) -> None:
    assert decode_cmd(encode_cmd_resend(from_seq)) == ResendCmd(from_seq)
    assert decode_cmd(encode_cmd_config(interval_s)) == ConfigCmd(interval_s)


@pytest.mark.parametrize(
    ("call", "arg"),
    [
        (encode_cmd_resend, -1),
        (encode_cmd_resend, True),
        (encode_cmd_config, 0),
        (encode_cmd_config, 1.5),
    ],
)
def test_encode_cmd_refuses_invalid(call: Any, arg: Any) -> None:
    with pytest.raises(ValueError, match="must be"):
        call(arg)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "empty_payload"),
        (b"{", "invalid_json"),
        (b"[]", "not_object"),
        (b"{}", "missing_field:cmd"),
        (b'{"cmd": 1}', "bad_type:cmd"),
        (b'{"cmd": "reboot"}', "bad_value:cmd"),
        (b'{"cmd": "resend"}', "missing_field:from_seq"),
        (b'{"cmd": "resend", "from_seq": "1"}', "bad_type:from_seq"),
        (b'{"cmd": "resend", "from_seq": false}', "bad_type:from_seq"),
        (b'{"cmd": "resend", "from_seq": -1}', "bad_value:from_seq"),
        (b'{"cmd": "config"}', "missing_field:interval_s"),
        (b'{"cmd": "config", "interval_s": 1.0}', "bad_type:interval_s"),
        (b'{"cmd": "config", "interval_s": 0}', "bad_value:interval_s"),
    ],
)
def test_decode_cmd_rejects(payload: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_cmd(payload)
    assert info.value.reason == reason


# ------------------------------------------------------------------------------------------
# Device events
# ------------------------------------------------------------------------------------------


def test_device_event_bytes_and_defaults() -> None:
    event = DeviceEvent("created", DEV, OTHER, 1.5, "interval", 3000.0, 900)
    assert json.loads(encode_device_event(event)) == {
        "action": "created",
        "device_id": DEV_S,
        "owner_id": str(OTHER),
        "max_hourly_kwh": 1.5,
        "meter_kind": "interval",
        "rated_power_w": 3000.0,
        "interval_s": 900,
    }
    assert decode_device_event(encode_device_event(event)) == event
    minimal = json.dumps({"action": "deleted", "device_id": DEV_S}).encode()
    assert decode_device_event(minimal) == DeviceEvent("deleted", DEV)
    assert decode_device_event(minimal).meter_kind == "cumulative"
    with_ints = json.dumps(
        {"action": "updated", "device_id": DEV_S, "max_hourly_kwh": 2, "rated_power_w": 0}
    ).encode()
    decoded = decode_device_event(with_ints)
    assert (decoded.max_hourly_kwh, decoded.rated_power_w) == (2.0, 0.0)
    assert type(decoded.max_hourly_kwh) is float


device_events = st.builds(
    DeviceEvent,
    action=st.sampled_from(["created", "updated", "deleted", "owner_changed"]),
    device_id=st.uuids(),
    owner_id=st.none() | st.uuids(),
    max_hourly_kwh=st.none() | energies,
    meter_kind=st.sampled_from(["cumulative", "interval"]),
    rated_power_w=st.none() | energies,
    interval_s=st.none() | st.integers(1, 2**63 - 1),
)


@given(device_events)
def test_device_event_roundtrip(event: DeviceEvent) -> None:
    assert decode_device_event(encode_device_event(event)) == event


@pytest.mark.parametrize(
    "bad",
    [
        DeviceEvent("renamed", DEV),  # type: ignore[arg-type]
        DeviceEvent("created", DEV, meter_kind="smart"),  # type: ignore[arg-type]
        DeviceEvent("created", DEV, max_hourly_kwh=-1.0),
        DeviceEvent("created", DEV, rated_power_w=math.nan),
        DeviceEvent("created", DEV, interval_s=0),
    ],
)
def test_encode_device_event_refuses_invalid(bad: DeviceEvent) -> None:
    with pytest.raises(ValueError, match=r"unknown|must be"):
        encode_device_event(bad)


def _event(**changes: Any) -> bytes:
    obj: dict[str, Any] = {"action": "updated", "device_id": DEV_S, **changes}
    return json.dumps({k: v for k, v in obj.items() if v is not ...}).encode()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "empty_payload"),
        (b"{,}", "invalid_json"),
        (b"null", "not_object"),
        (_event(action=...), "missing_field:action"),
        (_event(action=1), "bad_type:action"),
        (_event(action="renamed"), "bad_value:action"),
        (_event(device_id=...), "missing_field:device_id"),
        (_event(device_id=None), "bad_type:device_id"),
        (_event(device_id="x"), "bad_value:device_id"),
        (_event(owner_id=7), "bad_type:owner_id"),
        (_event(owner_id="nobody"), "bad_value:owner_id"),
        (_event(max_hourly_kwh="1"), "bad_type:max_hourly_kwh"),
        (_event(max_hourly_kwh=True), "bad_type:max_hourly_kwh"),
        (_event(max_hourly_kwh=-1), "bad_value:max_hourly_kwh"),
        (_event(rated_power_w=[1]), "bad_type:rated_power_w"),
        (_event(rated_power_w=-0.5), "bad_value:rated_power_w"),
        (b'{"action": "updated", "device_id": "x", "rated_power_w": 1e999}', "non_finite"),
        (_event(meter_kind=1), "bad_type:meter_kind"),
        (_event(meter_kind="smart"), "bad_value:meter_kind"),
        (_event(interval_s=1.5), "bad_type:interval_s"),
        (_event(interval_s=0), "bad_value:interval_s"),
    ],
)
def test_decode_device_event_rejects(payload: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_device_event(payload)
    assert info.value.reason == reason


@settings(max_examples=300)
@given(st.binary(max_size=256) | json_values.map(lambda v: json.dumps(v).encode()))
def test_fuzz_other_decoders_raise_only_decode_error(payload: bytes) -> None:
    for decode in (decode_status, decode_cmd, decode_device_event):
        reason = ""
        try:
            decode(payload)
        except DecodeError as exc:
            reason = exc.reason
        assert reason == "" or REASON_RE.fullmatch(reason), reason


# ------------------------------------------------------------------------------------------
# truncate_payload
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "limit", "expected"),
    [
        (b"", 1024, ""),
        (b'{"a": 1}', 1024, '{"a": 1}'),
        (b"abcdef", 6, "abcdef"),
        (b"abcdef", 3, "abc…(6 bytes)"),
        (b"abcdef", 0, "…(6 bytes)"),
        (b"a\xffb", 10, "a\ufffdb"),
        (b"a\x00b", 10, "a\ufffdb"),  # PostgreSQL text refuses NUL
        ("é".encode() * 3, 3, "é…(6 bytes)"),  # a character cut in half is dropped
        (b"x" * 2000, 1024, "x" * 1024 + "…(2000 bytes)"),
    ],
)
def test_truncate_payload(payload: bytes, limit: int, expected: str) -> None:
    assert truncate_payload(payload, limit) == expected


def test_truncate_payload_default_limit_and_negative() -> None:
    assert truncate_payload(b"y" * 1025) == "y" * 1024 + "…(1025 bytes)"
    assert truncate_payload(memoryview(b"abc")) == "abc"
    with pytest.raises(ValueError, match="limit"):
        truncate_payload(b"abc", -1)


@given(st.binary(max_size=300), st.integers(0, 300))
def test_truncate_payload_properties(payload: bytes, limit: int) -> None:
    text = truncate_payload(payload, limit)
    assert "\x00" not in text
    text.encode("utf-8")  # always storable as UTF-8 text
    if len(payload) <= limit:
        assert text == payload.decode("utf-8", "replace").replace("\x00", "\ufffd")
    else:
        assert text.endswith(f"…({len(payload)} bytes)")
        assert len(text) <= limit + len(f"…({len(payload)} bytes)")


def test_alert_events_round_trip_and_bad_ones_are_a_decode_error() -> None:
    raised = AlertEvent(
        event="raised",
        id=OTHER,
        device_id=DEV,
        user_id=None,
        kind="hourly_limit",
        hour=datetime(2026, 11, 25, 10, tzinfo=UTC),
        limit_kwh=5.0,
        value_kwh=5.4,
        projected_kwh=None,
        final_kwh=None,
        late=False,
        status="open",
        raised_at=datetime(2026, 11, 25, 10, 30, tzinfo=UTC),
        updated_at=datetime(2026, 11, 25, 10, 30, tzinfo=UTC),
    )
    assert decode_alert_event(encode_alert_event(raised)) == raised
    for bad in (b"", b"[]", b'{"event": "raised"}', b"\xff"):
        with pytest.raises(DecodeError):
            decode_alert_event(bad)
