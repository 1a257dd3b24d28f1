"""Alert rules (hub.alerts.evaluate): hourly limit, late, retraction, early warning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub.alerts import at_commit, evaluate, projected
from hub.rollup import HourRow

NOW = datetime(2026, 11, 25, 10, 30, tzinfo=UTC)
H10 = datetime(2026, 11, 25, 10, tzinfo=UTC)
H9 = H10 - timedelta(hours=1)


def row(hour: datetime, kwh: float) -> HourRow:
    return HourRow(hour, kwh, "measured", 3)


def kinds(decisions):  # type: ignore[no-untyped-def]
    return [(d.kind, d.hour, d.late) for d in decisions]


def test_current_hour_over_the_limit_raises_a_timely_alert() -> None:
    out = evaluate(5.0, [row(H10, 5.01)], H10 + timedelta(minutes=20), NOW)
    assert kinds(out) == [("hourly_limit", H10, False)]
    assert out[0].value_kwh == 5.01


def test_exactly_the_limit_is_not_over_it() -> None:
    out = evaluate(5.0, [row(H10, 5.0)], H10 + timedelta(minutes=2), NOW)
    assert kinds(out) == [("retract", H10, False)]


def test_past_hour_over_the_limit_is_late() -> None:
    out = evaluate(5.0, [row(H9, 7.0), row(H10, 1.0)], H10 + timedelta(minutes=2), NOW)
    assert ("hourly_limit", H9, True) in kinds(out)
    assert ("retract", H10, False) in kinds(out)


def test_an_hour_rolled_up_just_after_it_closed_is_not_late() -> None:
    just_after = H10 + timedelta(seconds=30)
    out = evaluate(5.0, [row(H9, 7.0)], H9 + timedelta(minutes=59, seconds=58), just_after)
    assert kinds(out) == [("hourly_limit", H9, False)]
    later = H10 + timedelta(minutes=1, seconds=1)
    assert kinds(evaluate(5.0, [row(H9, 7.0)], H9, later)) == [("hourly_limit", H9, True)]


def test_hour_back_under_the_limit_is_retracted() -> None:
    assert kinds(evaluate(5.0, [row(H9, 2.0)], H9 + timedelta(minutes=50), NOW)) == [
        ("retract", H9, False)
    ]


def test_early_warning_when_the_rate_projects_past_the_limit() -> None:
    # 3 kWh in the first 20 minutes projects to 9 kWh for the hour.
    out = evaluate(8.0, [row(H10, 3.0)], H10 + timedelta(minutes=20), NOW)
    assert ("early_warning", H10, False) in kinds(out)
    warning = next(d for d in out if d.kind == "early_warning")
    assert warning.projected_kwh == pytest.approx(9.0)


def test_no_early_warning_from_too_little_of_the_hour_or_under_the_projection() -> None:
    assert "early_warning" not in [
        d.kind for d in evaluate(8.0, [row(H10, 1.0)], H10 + timedelta(minutes=3), NOW)
    ]
    assert "early_warning" not in [
        d.kind for d in evaluate(8.0, [row(H10, 2.0)], H10 + timedelta(minutes=20), NOW)
    ]


def test_no_early_warning_for_a_past_hour() -> None:
    out = evaluate(8.0, [row(H9, 3.0)], H9 + timedelta(minutes=20), NOW)
    assert [d.kind for d in out] == ["retract"]


def test_projection_needs_five_minutes_and_stays_within_the_hour() -> None:
    assert projected(1.0, H10, H10 + timedelta(minutes=4)) is None
    assert projected(1.0, H10, H10 + timedelta(minutes=30)) == pytest.approx(2.0)
    assert projected(1.0, H10, H10 + timedelta(minutes=61)) is None


def test_at_commit_the_running_total_raises_the_limit_and_the_early_warning_only() -> None:
    latest = H10 + timedelta(minutes=20)
    over = at_commit(5.0, H10, 5.5, latest, NOW)
    assert over is not None and (over.kind, over.hour, over.late) == ("hourly_limit", H10, False)
    warned = at_commit(5.0, H10, 3.0, latest, NOW)  # 9 kWh projected for the hour
    assert warned is not None and warned.kind == "early_warning"
    assert warned.projected_kwh == pytest.approx(9.0)
    assert at_commit(5.0, H10, 1.0, latest, NOW) is None  # under, and on course: nothing
    # Late (the hour closed more than the grace ago) and retractions are the rollup's.
    assert at_commit(5.0, H9, 7.0, H9 + timedelta(minutes=50), NOW) is None
    # A reading from 09:59:58 committed at 10:00:30 is still on time.
    on_time = at_commit(5.0, H9, 7.0, H10 - timedelta(seconds=2), H10 + timedelta(seconds=30))
    assert on_time is not None and not on_time.late
