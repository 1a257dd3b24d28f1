"""The OpenAPI document tells the truth: schemathesis, with every check it has, finds nothing.

For every operation at /schema, schemathesis generates schema-valid and schema-invalid requests
(its examples, coverage and fuzzing phases, as `st run` does) and sends them to a real
`python -m portal` (real PostgreSQL and Mosquitto behind it), as an administrator and as a
client. All of its checks judge each answer: no 5xx; the status
documented for the operation; the body (errors included) matching the documented schema;
valid requests accepted and invalid ones rejected; the content type and headers as documented;
authentication not ignored. Any failure fails the test, with schemathesis' report and a curl
command to reproduce it.

Deterministic: Hypothesis is derandomized (a fixed seed) with no example database, and each
test starts from the same seeded database, so a run repeats exactly. The stateful phase is left
out on purpose: it chains calls through the data it finds (deleting users, demoting the
administrator, signing out), which makes a run depend on what ran before; each operation is
exercised here on its own.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS, is_check_class, load_all_checks
from schemathesis.config import SchemathesisConfig
from schemathesis.generation.hypothesis.builder import (
    HypothesisTestConfig,
    HypothesisTestMode,
    create_test,
)

from devkit.live_portal import LivePortal
from portal.auth.tokens import issue_token
from portal.settings import PortalSettings
from tests.integration.test_portal_api import seed

# Random requests per operation and caller, on top of the schema's examples and (as the client)
# the coverage phase; plus the checks' own follow-up requests.
EXAMPLES = 20
# The coverage phase (each boundary, each constraint broken in turn, every enum value, methods
# the path does not have) runs as the client: the document's boundaries are the same for every
# caller, and as the administrator it would create a user (an Argon2 hash each) for every one
# of ~600 documented time zones. The administrator's requests get the other phases.
PHASES = {
    "client": list(HypothesisTestMode),
    "admin": [HypothesisTestMode.EXAMPLES, HypothesisTestMode.FUZZING],
}
# Signing out revokes the token it is sent with: that operation gets a fresh token per request,
# so the one the rest of the run uses stays valid.
FRESH_TOKEN_PER_CASE = {"/api/v1/auth/logout"}
# 422: well-formed values that contradict each other or the stored data (a range longer than
# allowed, an owner that does not exist). The document lists 422 for those operations, and a
# schema cannot express "from before to", so a schema-valid request may earn one.
ACCEPTED_VALID_STATUSES = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]


def all_checks() -> list[Any]:
    """Every response check schemathesis has (the CLI's ``--checks all``)."""
    load_all_checks()
    return [check for check in CHECKS.get_all() if not is_check_class(check)]


@dataclass
class Portal:
    url: str
    mint: Callable[[str], dict[str, str]]  # caller → fresh Authorization header


@pytest.fixture
def fuzzed_portal(
    portal_settings: PortalSettings, portal_admin: tuple[str, str], tmp_path: Path
) -> Iterator[Portal]:
    ids = seed(portal_settings.database_url)  # alice, bob and their devices: data to find
    with psycopg.connect(portal_settings.database_url) as conn:
        row = conn.execute("SELECT id FROM users WHERE username = %s", (portal_admin[0],))
        ids["admin"] = str(row.fetchone()[0])  # type: ignore[index]
    roles = {"admin": ("admin", "admin"), "client": ("alice", "client")}

    def mint(caller: str) -> dict[str, str]:
        user, role = roles[caller]
        issued = issue_token(portal_settings.jwt_secret, uuid.UUID(ids[user]), role, 3600)
        return {"Authorization": f"Bearer {issued.token}"}

    with LivePortal(portal_settings, tmp_path / "portal.log") as portal:
        yield Portal(portal.url, mint)


@pytest.mark.parametrize("caller", ["admin", "client"])
def test_every_operation_conforms_to_the_document(
    fuzzed_portal: Portal, caller: str, subtests: pytest.Subtests
) -> None:
    # One test per caller, the operations fuzzed one by one inside it (each a Hypothesis test
    # built the way `@schema.parametrize()` builds them) rather than through
    # `schemathesis.pytest.from_fixture`: that loader (schemathesis 4.32) reads
    # `node._nodeid`, which pytest 9 no longer has.
    config = SchemathesisConfig.from_dict(
        {
            "checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED_VALID_STATUSES}},
            # The caller's token is sent with every request (the `ignored_auth` check still
            # sends each one without it and with a wrong one), so the token is not generated.
            "generation": {"with-security-parameters": False},
        }
    )
    schema = schemathesis.openapi.from_url(
        f"{fuzzed_portal.url}/schema/openapi.json", config=config
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25, [op.label for op in operations]
    checks = all_checks()
    assert len(checks) >= 14, [check.__name__ for check in checks]
    token = fuzzed_portal.mint(caller)

    for operation in operations:
        if operation.path in FRESH_TOKEN_PER_CASE:
            mint = functools.partial(fuzzed_portal.mint, caller)
            run = fuzz(operation, fuzzed_portal.url, mint, checks, PHASES[caller])
        else:
            run = fuzz(operation, fuzzed_portal.url, lambda: token, checks, PHASES[caller])
        with subtests.test(msg=f"{caller} {operation.label}"):
            run()


def fuzz(
    operation: Any,
    url: str,
    headers: Callable[[], dict[str, str]],
    checks: list[Any],
    phases: list[HypothesisTestMode],
) -> Callable[[], None]:
    """A Hypothesis test of ``operation`` as `st run` builds it: the schema's examples, the
    coverage phase (boundaries, each constraint broken in turn, unsupported methods, missing
    parameters) and random schema-valid and schema-invalid requests."""

    def conforms(case: Any) -> None:
        case.call_and_validate(base_url=url, headers=headers(), checks=checks)

    return create_test(  # type: ignore[no-any-return]
        operation=operation,
        test_func=conforms,
        config=HypothesisTestConfig(
            project=operation.schema.config,
            modes=phases,
            settings=settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            ),
        ),
    )
