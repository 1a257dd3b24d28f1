"""Scale-out benchmark: what a second hub and a second portal buy on this machine.

Prints:
  1. readings/s committed when a queued stream is drained by 1 hub, then by 2 hubs in the same
     share group (real Mosquitto, PostgreSQL with fsync on, `python -m hub` processes);
  2. requests/s through nginx with 1, then 2 portal processes (`python -m portal`) behind it:
     GET /health (one database round trip) and an authenticated GET /api/v1/me, from a few
     client processes on loopback, bounded in count and time.

Figures only, no pass or fail. Every process shares this machine's CPUs, so the figures show
where the bottleneck is here, not the gain on separate machines.

    uv run python bench/scale.py [--devices 2000] [--readings 100000] [--clients 4]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest import metric, stream
from bench.kit import Services, services
from devkit.hubkit import Gateway, add_devices, count, create_gateway, hub_process
from ems.admin import ensure_admin
from ems.broker import hub_user, portal_user
from ems.nginx import NginxProxy
from ems.procs import RunAs, free_port, stop_process

# Each hub's account is pinned to the client id of its name. Phase 2 reuses phase 1's id: no
# stale group member.
HUB_IDS = (hub_user(1), hub_user(2))
BENCH_USER, BENCH_PASSWORD = "bench-admin", "bench-password-1"


def wait(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            sys.exit(f"bench: {what} did not happen within {timeout:.0f} s")
        time.sleep(0.02)


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


# --- 1. ingest ------------------------------------------------------------------------------------


def ingest(svc: Services, n_hubs: int, n_devices: int, n_readings: int) -> float:
    ids = HUB_IDS[:n_hubs]
    broker, logs = svc.broker, [svc.base / f"{cid}.log" for cid in ids]
    # Each hub joins the share group once (its persistent session stays when it stops), so the
    # broker queues the stream for the group's members while they are away.
    procs = [
        hub_process(svc.dsn, broker, cid, log, HUB_MQTT_USERNAME=cid)
        for cid, log in zip(ids, logs, strict=True)
    ]
    for log in logs:
        wait(lambda log=log: "connected to" in log.read_text(), 30, f"{log.stem} connecting")
    for p in procs:
        p.terminate()
        p.wait(30)

    devices = add_devices(svc.dsn, n_devices)
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=20)
    gw = Gateway(broker, *gateway(svc))
    gw.publish_many(stream(devices, n_readings, start))
    gw.close()

    before = count(svc.dsn, "SELECT count(*) FROM readings")
    target = before + n_readings
    ports = [free_port() for _ in procs]
    procs = [
        hub_process(svc.dsn, broker, cid, log, HUB_HTTP_PORT=str(port), HUB_MQTT_USERNAME=cid)
        for cid, log, port in zip(ids, logs, ports, strict=True)
    ]
    try:
        # From the first committed reading to the last: hub start-up is not ingest.
        wait(lambda: count(svc.dsn, "SELECT count(*) FROM readings") > before, 60, "a commit")
        t0, first = time.perf_counter(), count(svc.dsn, "SELECT count(*) FROM readings")
        wait(lambda: count(svc.dsn, "SELECT count(*) FROM readings") >= target, 600, "the drain")
        rate = (target - first) / (time.perf_counter() - t0)
        split = [int(metric(p, "hub_readings_stored_total")) for p in ports]
    finally:
        for p in procs:
            stop_process(p, timeout=60)
    print(f"  {n_hubs} hub(s): {rate:9,.0f} readings/s committed   (stored per hub: {split})")
    return rate


_gateway: dict[str, tuple[str, str]] = {}


def gateway(svc: Services) -> tuple[str, str]:
    if "creds" not in _gateway:
        _gateway["creds"] = create_gateway(svc.broker)
    return _gateway["creds"]


# --- 2. portals through nginx ---------------------------------------------------------------------


def portal_env(svc: Services, i: int, port: int, jwt_secret: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")},
        "PORTAL_DATABASE_URL": svc.dsn,
        "PORTAL_JWT_SECRET": jwt_secret,
        "PORTAL_MQTT_HOST": svc.broker.host,
        "PORTAL_MQTT_PORT": str(svc.broker.port),
        "PORTAL_MQTT_USERNAME": portal_user(i),  # each replica its own (pinned) account
        "PORTAL_MQTT_PASSWORD": svc.broker.portal_password,
        "PORTAL_HTTP_PORT": str(port),
        "PORTAL_INSTANCE_ID": f"portal-{i}",
    }


@contextmanager
def portals_behind_nginx(svc: Services, n: int, jwt_secret: str) -> Iterator[int]:
    """n portal processes and nginx in front of them; yields nginx's port."""
    with ExitStack() as stack:
        ports = [free_port() for _ in range(n)]
        for i, port in enumerate(ports, start=1):
            log = (svc.base / f"portal-{n}-{i}.log").open("ab")
            proc = subprocess.Popen(
                [sys.executable, "-m", "portal"],
                env=portal_env(svc, i, port, jwt_secret),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            log.close()
            stack.callback(stop_process, proc, timeout=20)
            wait(lambda port=port: http_ok(f"http://127.0.0.1:{port}/health"), 60, "a portal")
        proxy = NginxProxy(
            svc.base / f"nginx-{n}",
            free_port(),
            [f"127.0.0.1:{p}" for p in ports],
            RunAs.detect(),
            workers=1,
        )
        proxy.prepare()
        proc = proxy.popen(svc.base / f"nginx-{n}.log", dict(os.environ))
        stack.callback(stop_process, proc, timeout=20)
        wait(lambda: http_ok(f"http://127.0.0.1:{proxy.port}/health"), 30, "nginx")
        yield proxy.port


def client(port: int, path: str, token: str | None, budget: int, seconds: float, out) -> None:
    """One keep-alive connection to nginx: requests until the budget or the time is spent."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    done = errors = 0
    deadline = time.perf_counter() + seconds
    while done + errors < budget and time.perf_counter() < deadline:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        resp.read()
        if resp.status == 200:
            done += 1
        else:
            errors += 1
    conn.close()
    out.put((done, errors))


def load(port: int, path: str, token: str | None, args: argparse.Namespace) -> tuple[float, int]:
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    budget = args.requests // args.clients
    procs = [
        ctx.Process(target=client, args=(port, path, token, budget, args.seconds, out))
        for _ in range(args.clients)
    ]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    results = [out.get(timeout=args.seconds + 60) for _ in procs]
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.join(10)
    ok = sum(r[0] for r in results)
    return ok / elapsed, sum(r[1] for r in results)


def portal_rates(svc: Services, n: int, args: argparse.Namespace, jwt_secret: str) -> None:
    with portals_behind_nginx(svc, n, jwt_secret) as port:
        body = json.dumps({"username": BENCH_USER, "password": BENCH_PASSWORD}).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/auth/login",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            token = json.loads(resp.read())["access_token"]
        load(port, "/health", None, args)  # warm-up: connections, caches
        for path, tok in (("/health", None), ("/api/v1/me", token)):
            rate, errors = load(port, path, tok, args)
            note = f", {errors} non-200" if errors else ""
            print(f"  {n} portal(s): {rate:9,.0f} requests/s  GET {path}{note}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=2_000)
    ap.add_argument("--readings", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=4, help="client processes for the HTTP load")
    ap.add_argument("--requests", type=int, default=8_000, help="per run, over all clients")
    ap.add_argument("--seconds", type=float, default=10.0, help="per run, at most")
    args = ap.parse_args()
    print(f"== scale-out on {os.cpu_count()} CPUs (every process shares them)")

    with services() as svc:
        print(f"-- ingest: {args.readings:,} queued readings from {args.devices:,} meters")
        one = ingest(svc, 1, args.devices, args.readings)
        two = ingest(svc, 2, args.devices, args.readings)
        print(f"  2 hubs / 1 hub: {two / one:.2f}×")

        print(f"-- portal through nginx: {args.clients} clients, ≤{args.requests:,} requests")
        ensure_admin(svc.dsn, BENCH_USER, BENCH_PASSWORD)
        jwt_secret = secrets.token_urlsafe(32)
        for n in (1, 2):
            portal_rates(svc, n, args, jwt_secret)


if __name__ == "__main__":
    main()
