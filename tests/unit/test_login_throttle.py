"""How long an address must wait before its next sign-in attempt on a user name (pure rules)."""

from __future__ import annotations

import dataclasses

import pytest

from portal.auth.throttle import BACKOFF_AFTER, Failures, wait_s
from portal.settings import PortalSettings, SettingsError, load_settings

SETTINGS = PortalSettings(
    database_url="postgresql://x@127.0.0.1/ems",
    jwt_secret="j" * 32,
    mqtt_username="portal",
    mqtt_password="p",
    login_max_failures=10,
    login_address_max_failures=50,
    login_backoff_s=1.0,
    login_window_s=300,
)


@pytest.mark.parametrize(
    ("pair", "since_last_s", "expected"),
    [
        (0, None, None),
        (BACKOFF_AFTER - 1, 0.0, None),  # the first failures are free
        (BACKOFF_AFTER, 0.0, 1),  # then 1 s, 2 s, 4 s … after the last failure
        (BACKOFF_AFTER, 1.5, None),
        (BACKOFF_AFTER + 1, 0.5, 2),
        (BACKOFF_AFTER + 3, 3.0, 5),
        (BACKOFF_AFTER + 6, 0.0, 64),
    ],
)
def test_a_pair_backs_off_exponentially(
    pair: int, since_last_s: float | None, expected: int | None
) -> None:
    failures = Failures(pair=pair, pair_last_age_s=since_last_s, pair_oldest_age_s=100.0)
    assert wait_s(failures, SETTINGS) == expected


def test_the_back_off_is_capped_by_the_window_and_can_be_turned_off() -> None:
    long_window = dataclasses.replace(SETTINGS, login_max_failures=100, login_window_s=30)
    many = Failures(pair=40, pair_last_age_s=10.0, pair_oldest_age_s=20.0)
    assert wait_s(many, long_window) == 20
    assert wait_s(many, dataclasses.replace(long_window, login_backoff_s=0)) is None
    fresh = Failures(pair=BACKOFF_AFTER, pair_last_age_s=0.0)
    assert wait_s(fresh, SETTINGS, backoff=False) is None


def test_a_pair_at_its_limit_waits_until_its_oldest_failure_leaves_the_window() -> None:
    failures = Failures(pair=10, pair_last_age_s=500.0, pair_oldest_age_s=290.2)
    assert wait_s(failures, dataclasses.replace(SETTINGS, login_backoff_s=0)) == 10


def test_an_address_at_its_limit_waits_whatever_the_user_name() -> None:
    failures = Failures(pair=0, address=50, address_oldest_age_s=200.0)
    assert wait_s(failures, SETTINGS) == 100
    assert wait_s(dataclasses.replace(failures, address=49), SETTINGS) is None


def test_trusted_proxies_are_ip_addresses_or_networks() -> None:
    env = {
        "PORTAL_DATABASE_URL": "postgresql://x@127.0.0.1/ems",
        "PORTAL_JWT_SECRET": "j" * 32,
        "PORTAL_MQTT_USERNAME": "portal",
        "PORTAL_MQTT_PASSWORD": "p" * 16,
    }
    assert load_settings(env).trusted_proxies == ()
    both = load_settings({**env, "PORTAL_TRUSTED_PROXIES": "127.0.0.1, 172.31.255.0/29"})
    assert both.trusted_proxies == ("127.0.0.1", "172.31.255.0/29")
    with pytest.raises(SettingsError, match="'nginx' is not an IP address or network"):
        load_settings({**env, "PORTAL_TRUSTED_PROXIES": "nginx"})
