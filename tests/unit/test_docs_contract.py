"""docs/mqtt.md is what meter makers build against: its topics, payload fields, enumerated values
and dead-letter reasons must be the ones of the ``contract`` package, so the page and the
contract cannot drift apart."""

from __future__ import annotations

import dataclasses
import inspect
import re
import types
import typing
import uuid
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from contract import payloads, readings, topics
from contract.reasons import DEAD_LETTER_REASONS, DecodeError, reason_family

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "mqtt.md").read_text()
DEVICE = uuid.UUID("5c2494a3-0d3a-4c1e-9a57-2f7e3c1b8d40")


def section(title: str) -> str:
    """The text of the ``## N. title`` section."""
    match = re.search(rf"^## \d+\. {re.escape(title)}\n(.*?)(?=^## |\Z)", DOC, re.M | re.S)
    assert match, f"docs/mqtt.md has no section {title!r}"
    return match.group(1)


def first_column(text: str) -> list[str]:
    """The back-quoted first cell of every table row (header and rule rows skipped)."""
    return re.findall(r"^\| `([^`]+)` \|", text, re.M)


def subsection(text: str, title: str) -> str:
    """The text of the ``### title`` subsection of a section."""
    match = re.search(rf"^### {re.escape(title)}\n(.*?)(?=^### |\Z)", text, re.M | re.S)
    assert match, f"docs/mqtt.md has no subsection {title!r}"
    return match.group(1)


def documented_topics() -> set[str]:
    return set(first_column(section("Topics"))) | set(
        first_column(section("EMS's own events").split("###")[0])
    )


def contract_topics() -> set[str]:
    """Every topic contract.topics names: each builder's, its id parameter as ``{name}``, and
    each fixed topic."""
    found: set[str] = set()
    for name in topics.__all__:
        value = getattr(topics, name)
        if name.endswith("_topic") and not name.startswith("parse_"):
            parameter = next(iter(inspect.signature(value).parameters))
            found.add(value(DEVICE).replace(str(DEVICE), f"{{{parameter}}}"))
        elif name.endswith("_TOPIC"):
            found.add(value)
    return found


def test_the_documented_topics_are_the_topics_of_the_contract() -> None:
    assert documented_topics() == contract_topics()
    # and each meter topic parses back as a meter topic of its kind
    for topic in set(first_column(section("Topics"))):
        parsed = topics.parse_meter_topic(topic.replace("{device_id}", str(DEVICE)))
        assert parsed is not None
        assert topic.endswith(parsed[1])


def test_every_subscription_filter_covers_a_documented_topic() -> None:
    filters = [getattr(topics, n) for n in topics.__all__ if n.endswith("_SUB")]
    filters.append(topics.readings_shared_sub("hub").split("/", 2)[2])  # minus $share/<group>/
    as_filters = {re.sub(r"\{[a-z_]+\}", "+", t) for t in documented_topics()}
    assert filters and set(filters) <= as_filters


def fields_of(struct: type) -> dict[str, object]:
    """Field name -> type of a msgspec struct or a dataclass."""
    hints = typing.get_type_hints(struct)
    if dataclasses.is_dataclass(struct):
        return {f.name: hints[f.name] for f in dataclasses.fields(struct)}
    return {f.name: hints[f.name] for f in msgspec.structs.fields(struct)}


def literal_values(annotation: object) -> set[str]:
    """The values of a Literal annotation, also inside ``X | None``."""
    if typing.get_origin(annotation) is typing.Literal:
        return {str(v) for v in typing.get_args(annotation)}
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return set().union(*(literal_values(a) for a in typing.get_args(annotation)))
    return set()


@pytest.mark.parametrize(
    ("title", "struct"),
    [
        ("Live events", payloads.LiveEvent),
        ("Alert events", payloads.AlertEvent),
        ("Device events", payloads.DeviceEvent),
        ("Chat messages", payloads.ChatMessage),
    ],
)
def test_each_event_table_lists_its_structs_fields_and_values(title: str, struct: type) -> None:
    text = subsection(section("EMS's own events"), title)
    fields = fields_of(struct)
    assert set(first_column(text)) == set(fields)
    for name, annotation in fields.items():
        row = re.search(rf"^\| `{name}` \|(.*)$", text, re.M)
        assert row is not None
        documented = set(re.findall(r"`([a-z_]+)`", row.group(1)))
        assert literal_values(annotation) <= documented, (name, row.group(1))


def test_the_chat_event_table_lists_every_kinds_fields() -> None:
    text = subsection(section("EMS's own events"), "Chat events")
    kinds = (payloads.MessageEvent, payloads.TypingEvent, payloads.ReadEvent)
    fields: dict[str, object] = {}
    for struct in kinds:
        fields |= fields_of(struct)
    assert set(first_column(text)) == {"kind", *fields}
    tags = {msgspec.inspect.type_info(k).tag for k in kinds}
    row = re.search(r"^\| `kind` \|(.*)$", text, re.M)
    assert row is not None and tags == set(re.findall(r"`([a-z_]+)`", row.group(1)))
    for name in ("sender_role", "reader_role"):
        row = re.search(rf"^\| `{name}` \|(.*)$", text, re.M)
        assert row is not None
        assert literal_values(fields[name]) <= set(re.findall(r"`([a-z_]+)`", row.group(1)))
    alert_row = re.search(
        r"^\| `alert` \|(.*)$", subsection(section("EMS's own events"), "Chat messages"), re.M
    )
    assert alert_row is not None
    assert set(fields_of(payloads.AlertRef)) <= set(re.findall(r"`([a-z_]+)`", alert_row.group(1)))


def test_the_commands_and_status_are_documented_with_their_fields() -> None:
    for struct in (payloads.ResendCmd, payloads.ConfigCmd):
        for name in fields_of(struct):
            assert f'"{name}"' in section("Commands"), name
    assert '{"state": "online", "ts": "…"}' in section("Status")
    for name in payloads.Status._fields:
        assert f'"{name}"' in section("Status"), name


def test_the_documented_reading_fields_are_the_fields_the_hub_decodes() -> None:
    documented = set(first_column(section("Readings")))
    decoded = {f.name for f in msgspec.structs.fields(readings._V1Reading)}
    assert documented == decoded
    # the struct readings decode into carries the same values under the same names
    assert {"ts", "energy_kwh", "seq", "power_w", "device_id"} <= set(fields_of(payloads.Reading))


def test_the_documented_batch_limit_is_the_codec_limit() -> None:
    assert f"1–{readings.MAX_BATCH}" in section("Topics")
    assert f"up to {readings.MAX_BATCH:,}".replace(",", "") in section("Readings").replace(",", "")


def test_the_documented_dead_letter_reasons_are_every_reason_and_no_other() -> None:
    documented = {reason_family(r) for r in first_column(section("What happens to a bad message"))}
    assert documented == DEAD_LETTER_REASONS


def _literal_reasons() -> set[str]:
    """Reason literals in the contract's and the hub's code: DecodeError("…") and
    DeadLetter(…, "…", …)."""
    found: set[str] = set()
    for path in [*(ROOT / "contract").glob("*.py"), *(ROOT / "hub").glob("*.py")]:
        text = path.read_text()
        found.update(re.findall(r'DecodeError\(\s*f?"([a-z_]+)', text))
        for call in re.findall(r"DeadLetter\((.*?)\)\n", text, re.S):
            found.update(re.findall(r'^\s*"([a-z_]+)",?$', call, re.M))
    return found


def test_every_reason_the_hub_writes_is_a_documented_family() -> None:
    # bad_alert_event and bad_live_event are the portal's own event decoding, never a meter's
    # dead letter
    written = {reason_family(r) for r in _literal_reasons()} - {"bad_alert_event", "bad_live_event"}
    assert written, "found no reason literals: the scan itself is broken"
    assert written <= DEAD_LETTER_REASONS, written - DEAD_LETTER_REASONS
    # the scan sees the reasons that are written outside the codec too
    assert {"unknown_device", "too_late", "conflict", "implausible"} <= written


def test_a_decoded_bad_reading_carries_a_registered_reason() -> None:
    cases = [b"", b"{", b"[]", b"[1]", b'{"ts": "bad", "energy_kwh": 1}', b'{"energy_kwh": 1}']
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for payload in cases:
        with pytest.raises(DecodeError) as caught:
            readings.decode_readings(DEVICE, payload, now=now)
        assert reason_family(caught.value.reason) in DEAD_LETTER_REASONS, payload
