"""docs/mqtt.md is what meter makers build against: its topics, reading fields and dead-letter
reasons must be the ones the code uses, so the page and the contract cannot drift apart."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from contract import readings, topics
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


def test_the_documented_topics_are_the_topics_the_code_builds() -> None:
    documented = set(first_column(section("Topics")))
    built = {
        build(DEVICE).replace(str(DEVICE), "{device_id}")
        for build in (topics.readings_topic, topics.status_topic, topics.cmd_topic)
    }
    assert documented == built
    # and each of them parses back as a meter topic of its kind
    for topic in built:
        parsed = topics.parse_meter_topic(topic.replace("{device_id}", str(DEVICE)))
        assert parsed is not None
        assert topic.endswith(parsed[1])


def test_the_documented_reading_fields_are_the_fields_the_hub_decodes() -> None:
    documented = set(first_column(section("Readings")))
    decoded = {f.name for f in msgspec.structs.fields(readings._V1Reading)}
    assert documented == decoded


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
