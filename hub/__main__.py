"""python -m hub: settings from the environment, run until SIGTERM/SIGINT, then drain."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

from hub.app import run
from hub.settings import SettingsError, load_settings


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s hub %(levelname)s %(message)s")
    try:
        settings = load_settings(os.environ)
    except SettingsError as exc:
        print(f"hub: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return run(settings, stop)


if __name__ == "__main__":
    raise SystemExit(main())
