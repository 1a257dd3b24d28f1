from __future__ import annotations

from ems.cli import main

raise SystemExit(main())
