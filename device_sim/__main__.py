"""``python -m device_sim``: the same as the ``ems-sim`` command."""

from __future__ import annotations

from device_sim.cli import main

raise SystemExit(main())
