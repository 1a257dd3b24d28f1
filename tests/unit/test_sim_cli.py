"""``ems-sim`` command-line parsing: relative times spelled as the README spells them."""

from __future__ import annotations

import pytest

from device_sim.cli import main, parse_args


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
