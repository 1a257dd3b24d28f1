"""ems-sim command line."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    print("ems-sim: the simulator is not built yet (issue 5)", file=sys.stderr)
    return 2
