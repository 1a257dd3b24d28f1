"""Pure pieces of the portal: tokens, CSRF tokens, validation, audit snapshots, page helpers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt
import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar import get
from litestar.testing import create_test_client
from sqlalchemy.exc import TimeoutError as PoolTimeout

from portal.audit.services import snapshot
from portal.auth.passwords import generate_password
from portal.auth.schemas import CurrentUser
from portal.auth.tokens import csrf_token_for, decode_token, issue_token, tokens_match
from portal.devices.schemas import DeviceCreate, DeviceUpdate
from portal.errors import exception_handlers
from portal.pagekit import from_form, safe_next
from portal.users.schemas import UserCreate, UserUpdate
from portal.validation import check_time_zone

SECRET = "unit-test-secret-of-at-least-32-bytes!"
USER = CurrentUser(
    id=uuid.uuid4(), username="u", name="", email=None, role="client", time_zone="UTC"
)


def test_an_issued_token_decodes_to_its_claims_and_nothing_else_does() -> None:
    user_id = uuid.uuid4()
    issued = issue_token(SECRET, user_id, "client", 600)
    claims = decode_token(SECRET, issued.token)
    assert claims == issued.claims
    assert claims is not None and claims.user_id == user_id and claims.role == "client"
    assert claims.expires_at - claims.issued_at == timedelta(seconds=600)
    assert decode_token("another-secret-of-at-least-32-bytes!!", issued.token) is None
    assert decode_token(SECRET, issued.token + "x") is None
    assert decode_token(SECRET, "") is None
    assert decode_token(SECRET, "x" * 5000) is None


def test_tokens_without_a_required_claim_or_with_a_bad_subject_are_refused() -> None:
    now = int(datetime.now(UTC).timestamp())
    full = {"sub": str(uuid.uuid4()), "role": "admin", "jti": "j", "iat": now, "exp": now + 60}
    for missing in full:
        claims = {k: v for k, v in full.items() if k != missing}
        assert decode_token(SECRET, jwt.encode(claims, SECRET, algorithm="HS256")) is None
    for bad in ({"sub": "not-a-uuid"}, {"jti": 7}, {"role": ["admin"]}, {"jti": "j" * 65}):
        token = jwt.encode({**full, **bad}, SECRET, algorithm="HS256")
        assert decode_token(SECRET, token) is None, bad


@given(st.text(max_size=300))
def test_arbitrary_strings_never_crash_token_decoding(text: str) -> None:
    assert decode_token(SECRET, text) is None


def test_csrf_tokens_are_bound_to_one_session() -> None:
    first, second = csrf_token_for(SECRET, "a"), csrf_token_for(SECRET, "b")
    assert first != second and len(first) == 64
    assert tokens_match(first, csrf_token_for(SECRET, "a"))
    assert not tokens_match(first, second)
    assert not tokens_match("", "")
    assert not tokens_match(None, first)


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris", "America/Argentina/Buenos_Aires"])
def test_real_time_zones_pass(zone: str) -> None:
    check_time_zone(zone)


@pytest.mark.parametrize("zone", ["", "Mars/Base", "../../etc/passwd", "utc ", "Europe/Paris\x00"])
def test_made_up_time_zones_fail(zone: str) -> None:
    with pytest.raises(ValueError, match="time_zone"):
        check_time_zone(zone)


def test_snapshots_never_contain_secrets() -> None:
    before = {
        "username": "alice",
        "password": "p",
        "password_hash": "$argon2id$…",
        "mqtt_password": "m",
        "access_token": "t",
        "password_reset": True,
    }
    assert snapshot(before) == {"username": "alice", "password_reset": True}
    assert snapshot(USER) == msgspec.to_builtins(USER)
    assert snapshot(None) is None


def test_partial_updates_know_what_was_sent() -> None:
    update = msgspec.json.decode(b'{"rated_power_w": null, "name": "n"}', type=DeviceUpdate)
    assert update.changes() == {"name": "n", "rated_power_w": None}
    assert msgspec.json.decode(b"{}", type=UserUpdate).changes() == {}


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": "m", "max_hourly_kwh": 1, "description": "a\\u0000b"}',
        b'{"name": " ", "max_hourly_kwh": 1}',
        b'{"name": "m", "max_hourly_kwh": 1e7}',
        b'{"name": "m", "max_hourly_kwh": 1, "interval_s": 86401}',
    ],
)
def test_device_schema_refuses_what_postgres_or_the_hub_cannot_take(body: bytes) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(body, type=DeviceCreate)


def test_forms_become_request_schemas() -> None:
    form = {
        "name": "m",
        "max_hourly_kwh": "2.5",
        "rated_power_w": "",
        "interval_s": "60",
        "csrf_token": "ignored",
    }
    fields = ("name", "max_hourly_kwh", "rated_power_w", "interval_s")
    created = from_form(form, DeviceCreate, fields=fields)
    assert (created.max_hourly_kwh, created.rated_power_w, created.interval_s) == (2.5, None, 60)
    cleared = from_form(form, DeviceUpdate, fields=fields, blank_is_none=("rated_power_w",))
    assert cleared.changes()["rated_power_w"] is None
    with pytest.raises(msgspec.ValidationError):
        from_form(
            {"username": "ab", "password": "long-enough"},
            UserCreate,
            fields=("username", "password"),
        )


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/admin/users", "/admin/users"),
        ("", "/devices"),
        ("//evil.example", "/devices"),
        ("https://evil.example", "/devices"),
        ("/\\evil.example", "/devices"),
    ],
)
def test_only_local_paths_are_followed_after_sign_in(target: str, expected: str) -> None:
    assert safe_next(target, USER) == expected


def test_an_exhausted_connection_pool_is_a_503_to_retry_not_a_500() -> None:
    @get("/busy", sync_to_thread=False)
    def busy() -> None:
        raise PoolTimeout("QueuePool limit of size 10 overflow 10 reached")

    with create_test_client([busy], exception_handlers=exception_handlers()) as client:
        response = client.get("/busy")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    assert "busy" in response.json()["detail"]


def test_generated_passwords_can_be_given_on_a_command_line() -> None:
    # token_urlsafe starts with "-" once in 64 draws: in 2,000 draws that is all but certain,
    # and "ems-sim run --password -x..." would read such a password as an option.
    drawn = [generate_password(12) for _ in range(2000)]
    assert not [p for p in drawn if p.startswith("-")]
    assert all(len(p) == 16 and p.replace("-", "").replace("_", "").isalnum() for p in drawn)
    assert len(set(drawn)) == len(drawn)
