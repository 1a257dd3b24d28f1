"""docs/operations.md documents every metric the hub and the portal export, with its type.

The metric table's names are compared with what ``HubMetrics`` and the portal's
``RequestMetrics`` register on a fresh registry, as Prometheus sees them (a counter's samples
end in ``_total``), so a new metric without a line in the operator guide fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from hub.metrics import HubMetrics
from portal.metrics import RequestMetrics

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
_ROW = re.compile(r"^\| `((?:hub|portal)_\w+)` \| (counter|gauge|histogram) \|", re.MULTILINE)


def _exported(registry: CollectorRegistry) -> dict[str, str]:
    """Each metric's name as scraped (``hub_readings_stored_total``) and its type."""
    names: dict[str, str] = {}
    for family in registry.collect():
        suffix = "_total" if family.type == "counter" else ""
        names[family.name + suffix] = family.type
    return names


def test_the_operator_guide_lists_exactly_the_metrics_the_services_export() -> None:
    portal = CollectorRegistry()
    RequestMetrics(portal)
    exported = {**_exported(HubMetrics().registry), **_exported(portal)}
    documented = dict(_ROW.findall(DOC.read_text(encoding="utf-8")))
    assert documented.keys() - exported.keys() == set(), "documented but not exported"
    assert exported.keys() - documented.keys() == set(), "exported: add a line to the guide"
    assert documented == exported  # and each with its type
