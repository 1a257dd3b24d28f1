"""The operator CLI: `ems up`, `ems migrate`, `ems admin create`, `ems broker-config`."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ems.config import StackConfig, load_or_create_secrets


def _database_url(args: argparse.Namespace) -> str:
    if args.database_url:
        return str(args.database_url)
    if env := os.environ.get("EMS_DATABASE_URL"):
        return env
    # Default: the database of the local stack (`ems up`), whose secrets live in EMS_HOME.
    cfg = StackConfig.from_env(os.environ)
    secrets = load_or_create_secrets(cfg.home)
    return f"postgresql://ems:{secrets['pg_password']}@{cfg.host}:{cfg.pg_port}/ems"


def cmd_up(args: argparse.Namespace) -> int:
    from ems.stack import up

    if args.replicas < 1:
        print(f"ems: --replicas {args.replicas}: at least one hub and one portal", file=sys.stderr)
        return 2
    try:
        cfg = StackConfig.from_env(
            os.environ,
            demo=args.demo,
            replicas=args.replicas,
            home=Path(args.home).resolve() if args.home else None,
            demo_meters=args.demo_meters,
        )
    except ValueError as exc:
        print(f"ems: {exc}", file=sys.stderr)
        return 2
    return up(cfg, say=lambda line: print(line, flush=True))


def cmd_migrate(args: argparse.Namespace) -> int:
    import psycopg

    from migrations.runner import MigrationError, migrate

    try:
        applied = migrate(_database_url(args), progress=print)
    except (MigrationError, psycopg.OperationalError) as exc:
        print(f"ems migrate: {exc}", file=sys.stderr)
        return 1
    print(f"{len(applied)} migration(s) applied" if applied else "schema is up to date")
    return 0


def cmd_admin_create(args: argparse.Namespace) -> int:
    import psycopg

    from ems.admin import ensure_admin

    password: str | None
    if args.password_env:
        password = os.environ.get(args.password_env)
        if not password:
            print(f"ems admin create: ${args.password_env} is empty", file=sys.stderr)
            return 2
    elif args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif args.prompt and sys.stdin.isatty():
        password = getpass.getpass(f"password for {args.username}: ")
    else:
        password = os.environ.get("EMS_ADMIN_PASSWORD") or None
    try:
        result = ensure_admin(_database_url(args), args.username, password, reset=args.reset)
    except ValueError as exc:
        print(f"ems admin create: {exc}", file=sys.stderr)
        return 2
    except psycopg.OperationalError as exc:
        print(f"ems admin create: cannot reach the database — {exc}", file=sys.stderr)
        return 1
    if not result.created and not args.reset:
        print(f"administrator {result.username!r} already exists (use --reset for a new password)")
    elif result.password:
        print(f"administrator {result.username!r}: password {result.password} (shown once)")
    else:
        print(f"administrator {result.username!r} {'created' if result.created else 'updated'}")
    return 0


def cmd_broker_config(args: argparse.Namespace) -> int:
    """Print (or write) the Mosquitto configuration; with --bootstrap, also write the initial
    dynamic-security file — only if there is none, since Mosquitto owns it after the first start."""
    from ems.broker import dynsec_document, render_config, upgrade_document, write_private_json
    from ems.procs import StackError

    tls = None
    if args.tls_port:
        if not (args.tls_certfile and args.tls_keyfile):
            print(
                "ems broker-config: --tls-port needs --tls-certfile and --tls-keyfile",
                file=sys.stderr,
            )
            return 2
        tls = {
            "port": str(args.tls_port),
            "certfile": args.tls_certfile,
            "keyfile": args.tls_keyfile,
        }
        if args.tls_cafile:
            tls["cafile"] = args.tls_cafile
    try:
        text = render_config(
            data_dir=Path(args.data_dir),
            port=args.port,
            host=args.host,
            dynsec_file=Path(args.dynsec_file),
            tls=tls,
            log_file=Path(args.log_file) if args.log_file else None,
        )
    except StackError as exc:
        print(f"ems broker-config: {exc}", file=sys.stderr)
        return 1
    if args.output:
        Path(args.output).write_text(text)
    else:
        print(text)
    if args.bootstrap:
        dynsec = Path(args.dynsec_file)
        hub_pw = os.environ.get("EMS_HUB_MQTT_PASSWORD", "")
        portal_pw = os.environ.get("EMS_PORTAL_MQTT_PASSWORD", "")
        if not (hub_pw and portal_pw):
            print(
                "ems broker-config: --bootstrap needs EMS_HUB_MQTT_PASSWORD and "
                "EMS_PORTAL_MQTT_PASSWORD (the hub's and the portal's broker passwords)",
                file=sys.stderr,
            )
            return 2
        replicas = {"hubs": args.hubs, "portals": args.portals}
        if dynsec.exists():
            # The broker is stopped here (broker-init runs before it): the service roles and
            # accounts are brought up to date and every account pinned to its client id;
            # existing passwords and meters' roles stay as they are.
            doc = json.loads(dynsec.read_text())
            if upgrade_document(doc, hub_pw, portal_pw, **replicas):
                write_private_json(dynsec, doc)
                print(f"ems broker-config: brought {dynsec} up to date", file=sys.stderr)
            else:
                print(f"ems broker-config: kept {dynsec} (up to date)", file=sys.stderr)
            return 0
        dynsec.parent.mkdir(parents=True, exist_ok=True)
        write_private_json(dynsec, dynsec_document(hub_pw, portal_pw, **replicas))
        print(f"ems broker-config: wrote {dynsec} (service accounts and roles)", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ems", description="EMS operator CLI")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run broker, database, hub and portal on this machine")
    up.add_argument("--demo", action="store_true", help="also provision and run a demo fleet")
    up.add_argument("--demo-meters", type=int, default=4, help="meters in the demo fleet")
    up.add_argument("--replicas", type=int, default=1, help="hubs and portals to run")
    up.add_argument("--home", help="state directory (default: $EMS_HOME or .ems)")
    up.set_defaults(func=cmd_up)

    mig = sub.add_parser("migrate", help="apply database migrations")
    mig.add_argument("--database-url", help="default: $EMS_DATABASE_URL or the local stack")
    mig.set_defaults(func=cmd_migrate)

    adm = sub.add_parser("admin", help="administrator accounts")
    adm_sub = adm.add_subparsers(dest="admin_command", required=True)
    create = adm_sub.add_parser("create", help="create an administrator (idempotent)")
    create.add_argument("--username", default="admin")
    create.add_argument("--password-env", help="read the password from this variable")
    create.add_argument("--password-stdin", action="store_true", help="read it from stdin")
    create.add_argument("--prompt", action="store_true", help="ask for it on the terminal")
    create.add_argument("--reset", action="store_true", help="set a new password if it exists")
    create.add_argument("--database-url")
    create.set_defaults(func=cmd_admin_create)

    bc = sub.add_parser("broker-config", help="print the Mosquitto configuration")
    bc.add_argument("--port", type=int, default=1883)
    bc.add_argument("--host", default="0.0.0.0")  # noqa: S104 - inside the broker container
    bc.add_argument("--data-dir", default="/mosquitto/data")
    bc.add_argument("--dynsec-file", default="/mosquitto/data/dynamic-security.json")
    bc.add_argument("--log-file", help="default: mosquitto.log in the data directory")
    bc.add_argument("--output", help="write the configuration here instead of printing it")
    bc.add_argument(
        "--bootstrap",
        action="store_true",
        help="also write the dynamic-security file if absent "
        "(passwords from EMS_HUB_MQTT_PASSWORD and EMS_PORTAL_MQTT_PASSWORD)",
    )
    bc.add_argument(
        "--hubs", type=int, default=1, help="with --bootstrap: hub replicas to create accounts for"
    )
    bc.add_argument(
        "--portals",
        type=int,
        default=1,
        help="with --bootstrap: portal replicas to create accounts for",
    )
    bc.add_argument("--tls-port", type=int, help="add a TLS listener on this port (e.g. 8883)")
    bc.add_argument("--tls-certfile", help="server certificate (PEM) for the TLS listener")
    bc.add_argument("--tls-keyfile", help="its private key (PEM)")
    bc.add_argument("--tls-cafile", help="CA bundle, for client certificates (optional)")
    bc.set_defaults(func=cmd_broker_config)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
