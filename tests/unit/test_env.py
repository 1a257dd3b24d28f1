"""common.env: the one settings reader — defaults, bounds, and errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.env import Env, SettingsError


def test_unset_or_empty_means_the_default() -> None:
    env = Env({"EMPTY": ""})
    for name in ("EMPTY", "UNSET"):
        assert env.str(name, "d") == "d"
        assert env.int(name, 7, ge=1) == 7
        assert env.float(name, 0.5, gt=0) == 0.5
        assert env.bool(name, True) is True
        assert env.path(name, ".ems") == Path(".ems")


def test_values_are_parsed_to_their_types() -> None:
    env = Env({"N": "42", "X": "2.5e3", "B": "Off", "S": "broker", "P": "/var/lib/ems"})
    assert env.int("N", 1, ge=1, le=100) == 42
    assert env.float("X", 1.0, gt=0) == 2500.0
    assert env.bool("B", True) is False
    assert env.str("S", "127.0.0.1") == "broker"
    assert env.path("P", ".ems") == Path("/var/lib/ems")


def test_a_bad_integer_names_the_variable_its_bound_and_the_value() -> None:
    with pytest.raises(SettingsError) as caught:
        Env({"HUB_BATCH_SIZE": "abc"}).int("HUB_BATCH_SIZE", 5000, ge=1)
    assert str(caught.value) == "HUB_BATCH_SIZE must be an integer ≥ 1, got 'abc'"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("0", "N must be an integer between 1 and 16, got '0'"),
        ("17", "N must be an integer between 1 and 16, got '17'"),
        ("1.5", "N must be an integer between 1 and 16, got '1.5'"),
    ],
)
def test_integer_bounds_are_inclusive_and_enforced(raw: str, message: str) -> None:
    env = Env({"N": raw, "LOW": "1", "HIGH": "16"})
    assert (env.int("LOW", 2, ge=1, le=16), env.int("HIGH", 2, ge=1, le=16)) == (1, 16)
    with pytest.raises(SettingsError) as caught:
        env.int("N", 2, ge=1, le=16)
    assert str(caught.value) == message


@pytest.mark.parametrize("raw", ["0", "-1", "inf", "nan", "lots"])
def test_a_number_must_be_finite_and_within_its_bound(raw: str) -> None:
    with pytest.raises(SettingsError, match=rf"^W must be a number > 0, got '{raw}'$"):
        Env({"W": raw}).float("W", 1.0, gt=0)


def test_a_bad_boolean_lists_what_is_accepted() -> None:
    env = Env({"FLAG": "perhaps", "YES": "ON", "ONE": "1"})
    assert env.bool("YES", False) is True and env.bool("ONE", False) is True
    with pytest.raises(SettingsError, match=r"FLAG must be true or false .*got 'perhaps'"):
        env.bool("FLAG", False)


def test_a_secret_has_no_default_and_no_placeholder() -> None:
    env = Env({"PW": "changeme", "SHORT": "abc", "GOOD": "x" * 32}, who="the portal")
    assert env.secret("GOOD", min_length=32) == "x" * 32
    with pytest.raises(SettingsError, match=r"MISSING must be set .* the portal cannot start"):
        env.secret("MISSING")
    with pytest.raises(SettingsError, match="PW must be set"):
        env.secret("PW")
    with pytest.raises(SettingsError, match="SHORT must be at least 32 characters"):
        env.secret("SHORT", min_length=32)


def test_settings_errors_are_value_errors_for_callers_that_catch_those() -> None:
    # `ems` reports ValueError from StackConfig.from_env; hub and portal catch SettingsError.
    assert issubclass(SettingsError, ValueError)
