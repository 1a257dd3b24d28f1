"""python -m portal: load settings from the environment and serve with uvicorn."""

from __future__ import annotations

import logging
import os
import sys

import uvicorn

from portal.app import create_app
from portal.settings import SettingsError, load_settings


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s portal %(levelname)s %(message)s")
    try:
        settings = load_settings(os.environ)
    except SettingsError as exc:
        print(f"portal: {exc}", file=sys.stderr)
        return 2
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_level="warning",
        # The application handles X-Forwarded-* itself, trusting only PORTAL_TRUSTED_PROXIES
        # (portal.app.proxy_middleware); uvicorn's default would trust 127.0.0.1.
        proxy_headers=False,
        ws_ping_interval=20,
        timeout_graceful_shutdown=5,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
