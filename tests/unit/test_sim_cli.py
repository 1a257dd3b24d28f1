"""``ems-sim`` command-line parsing: relative times spelled as the README spells them."""

from __future__ import annotations

import asyncio
import io
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from device_sim.check import CheckRequest, run_check
from device_sim.cli import main, parse_args
from device_sim.plan import BrokerPlan


@pytest.mark.parametrize("value", ["-1d", "-2h", "-2h30m", "+2h", "-90", "-1.5h"])
def test_a_signed_start_is_accepted_with_a_space_or_an_equals_sign(value: str) -> None:
    spaced = parse_args(["run", "-c", "fleet.toml", "--start", value, "--speed", "3600"])
    joined = parse_args(["run", "-c", "fleet.toml", f"--start={value}", "--speed", "3600"])
    assert spaced.start == joined.start == value
    assert spaced.speed == joined.speed == 3600.0


def test_other_start_values_and_other_arguments_are_left_as_they_are() -> None:
    args = parse_args(["run", "--start", "now", "--fault", "outage@2h,for=45m"])
    assert args.start == "now"
    assert args.fault == ["outage@2h,for=45m"]
    rfc = parse_args(["run", "--start", "2026-11-25T10:00:00Z"])
    assert rfc.start == "2026-11-25T10:00:00Z"


def test_the_documented_spelling_reaches_the_run_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Before: argparse stopped at "--start: expected one argument" (exit 2 via SystemExit).
    Now the run command itself answers: this invocation has no meters to run."""
    assert main(["run", "--start", "-1d", "--speed", "3600"]) == 2
    err = capsys.readouterr().err
    assert "expected one argument" not in err
    assert "no meters to run" in err


def test_check_takes_a_signed_end_like_run_takes_a_signed_start() -> None:
    args = parse_args(["check", "--end", "-1d", "--seed", "7"])
    assert (args.end, args.seed) == ("-1d", 7)


def test_check_refuses_an_end_in_the_future_or_that_is_not_a_time(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["check", "--end", "+2h"]) == 2
    assert "the series must end in the past" in capsys.readouterr().err
    assert main(["check", "--end", "yesterday"]) == 2
    assert "--end: 'yesterday' is not a time" in capsys.readouterr().err


def test_check_with_an_end_sends_the_same_series_whenever_it_runs() -> None:
    """The window before --end (on the hour), the same readings on every run: a check run
    against old data gives the same verdict at any time of day."""
    sent: list[list[tuple[datetime, float]]] = []

    async def publish(_b: BrokerPlan, _d: uuid.UUID, _p: str, series: Any) -> None:
        sent.append(list(series))

    end = datetime(2025, 6, 2, 12, 30, tzinfo=UTC)  # floored to 12:00
    for _ in range(2):
        req = CheckRequest(
            "http://portal.test",
            "admin",
            "secret",
            BrokerPlan(),
            device=(uuid.UUID(int=1), "pw"),
            timeout_s=0.05,
            poll_s=0.01,
            end=end,
        )
        transport = httpx.MockTransport(lambda r: httpx.Response(200, json={"token": "t"}))
        asyncio.run(run_check(req, io.StringIO(), publish=publish, transport=transport))
    assert sent[0] == sent[1]
    assert sent[0][0][0] == datetime(2025, 6, 2, 8, 50, tzinfo=UTC)  # baseline, then 3 hours
    assert sent[0][-1][0] == datetime(2025, 6, 2, 11, 50, tzinfo=UTC)
