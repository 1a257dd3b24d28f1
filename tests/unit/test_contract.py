"""contract/: the one home of the MQTT contract. It stands alone, and what people read of its
enumerations (labels) is defined once, on the server."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from contract.enums import ALERT_KINDS, QUALITIES
from hub.energy import Quality
from portal.alerts.texts import BROWSER_LABELS, KIND_LABELS

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
USERS_OF_THE_CONTRACT = {"hub", "portal", "device_sim", "firmware_stub", "devkit", "bench", "ems"}


def test_the_contract_imports_none_of_its_users() -> None:
    imported: set[str] = set()
    for path in (ROOT / "contract").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
    assert "contract" in imported  # the scan sees the package's own imports
    assert not imported & USERS_OF_THE_CONTRACT


def test_every_alert_kind_has_one_label_and_the_browser_gets_them() -> None:
    assert list(KIND_LABELS) == list(ALERT_KINDS)
    assert all(label.strip() for label in KIND_LABELS.values())
    assert BROWSER_LABELS["alert_kind"] is KIND_LABELS


def test_no_other_source_file_keeps_its_own_alert_labels() -> None:
    """The browser scripts and the other pages take the labels from portal/alerts/texts.py."""
    home = ROOT / "portal" / "alerts" / "texts.py"
    sources = [
        p
        for pattern in ("*.py", "*.js", "*.html")
        for p in (ROOT / "portal").rglob(pattern)
        if "node_modules" not in p.parts and p != home
    ]
    assert any(p.name == "alerts.js" for p in sources)
    for path in sources:
        text = path.read_text()
        for label in KIND_LABELS.values():
            assert f'"{label}"' not in text, f"{path.relative_to(ROOT)} keeps the label {label!r}"


def test_the_rollup_ranks_exactly_the_contract_qualities() -> None:
    assert {q.value for q in Quality} == set(QUALITIES)
