"""compose.yaml agrees with the services it runs: their settings, health checks, ports, proxy.

There is no Docker engine in the test environment, so compose.yaml is checked by parsing it,
interpolating ${...} the way compose does, and feeding each service's environment to the same
``load_settings`` the service calls at start-up.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from ems import nginx
from ems.broker import HEALTHCHECK_USER, hub_user, portal_user
from ems.cli import build_parser
from ems.config import StackConfig
from ems.service_env import hub_env, portal_env
from hub.settings import load_settings as load_hub_settings
from portal.settings import load_settings as load_portal_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
SECRETS = {
    "POSTGRES_PASSWORD": "pg-" + "p" * 20,
    "EMS_HUB_MQTT_PASSWORD": "hub-" + "h" * 20,
    "EMS_PORTAL_MQTT_PASSWORD": "portal-" + "q" * 20,
    "PORTAL_JWT_SECRET": "jwt-" + "j" * 40,
    "EMS_ADMIN_PASSWORD": "admin-" + "a" * 20,
}
ONE_SHOTS = {"migrate", "broker-init"}
# Variables a service reads that are not its own settings, and why.
FOREIGN_ENV = {
    "PGPASSWORD": "libpq: the database password, kept out of the DSN",
}


# --- compose's own interpolation ------------------------------------------------------------------

_REF = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_]\w*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_]\w*))"
)


class MissingVariable(Exception):
    pass


def interpolate_text(text: str, env: Mapping[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        if m["escaped"]:
            return "$"
        name = m["braced"] or m["bare"]
        value, op, arg = env.get(name), m["op"], m["arg"] or ""
        if op in (":?", "?") and (value is None or (op == ":?" and not value)):
            raise MissingVariable(f"{name}: {arg}")
        if op == ":-" and not value:
            return arg
        if op == "-" and value is None:
            return arg
        return value or ""

    return _REF.sub(one, text)


def interpolate(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate_text(node, env)
    if isinstance(node, dict):
        return {k: interpolate(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(v, env) for v in node]
    return node


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return doc


@pytest.fixture(scope="module")
def services(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = interpolate(raw, SECRETS)["services"]
    return out


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "environment as a mapping, so keys can be checked"
    return {str(k): str(v) for k, v in env.items()}


def named(services: dict[str, dict[str, Any]], prefix: str) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in services.items() if re.fullmatch(rf"{prefix}-\d+", n)}


def replica(name: str) -> int:
    """hub-2 → 2."""
    return int(name.rsplit("-", 1)[1])


class RecordingEnv(dict[str, str]):
    """A mapping that remembers every name looked up in it."""

    def __init__(self, values: Mapping[str, str]) -> None:
        super().__init__(values)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return super().__contains__(key)


def names_read(load: Any) -> set[str]:
    """Every variable ``load`` looks up (given a complete, valid environment)."""
    env = RecordingEnv(
        {
            "HUB_DATABASE_URL": "postgresql://u:p@h/d",
            "HUB_MQTT_USERNAME": "u",
            "HUB_MQTT_PASSWORD": "p" * 20,
            "PORTAL_DATABASE_URL": "postgresql://u:p@h/d",
            "PORTAL_JWT_SECRET": "s" * 40,
            "PORTAL_MQTT_USERNAME": "u",
            "PORTAL_MQTT_PASSWORD": "p" * 20,
        }
    )
    load(env)
    return env.read


def health_port(service: dict[str, Any]) -> int:
    test = " ".join(service["healthcheck"]["test"])
    m = re.search(r"http://127\.0\.0\.1:(\d+)/health", test)
    assert m, f"health check does not GET /health: {test}"
    return int(m[1])


def broker_listener_port(services: dict[str, dict[str, Any]]) -> int:
    args = build_parser().parse_args(services["broker-init"]["command"][1:])
    return int(args.port)


# --- services, health checks, dependencies -------------------------------------------------------


def test_the_deployment_has_the_documented_shape(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == {
        "db", "broker-init", "broker", "migrate", "hub-1", "hub-2", "portal-1", "portal-2", "proxy"
    }  # fmt: skip
    assert services["db"]["image"].startswith("timescale/timescaledb:")
    assert services["db"]["image"].endswith("-pg15")
    assert services["broker"]["image"].startswith("eclipse-mosquitto:2")


def test_every_long_running_service_has_a_health_check(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, svc in services.items():
        if name in ONE_SHOTS:
            assert svc.get("restart") == "no", f"{name} is a one-shot: it must not be restarted"
            continue
        check = svc.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), name
        assert check["test"][0] in {"CMD", "CMD-SHELL"}, name
        assert svc.get("restart") == "unless-stopped", name


def test_dependencies_wait_for_health_or_completion(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        for target, spec in (svc.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            expected = (
                "service_completed_successfully" if target in ONE_SHOTS else "service_healthy"
            )
            assert spec.get("condition") == expected, (name, target, spec)
    for name in [*named(services, "hub"), *named(services, "portal")]:
        assert set(services[name]["depends_on"]) == {"db", "broker", "migrate"}, name
    assert set(services["migrate"]["depends_on"]) == {"db"}
    assert set(services["broker"]["depends_on"]) == {"broker-init"}
    assert set(services["proxy"]["depends_on"]) == set(named(services, "portal"))


def test_only_the_proxy_and_the_broker_are_published(services: dict[str, dict[str, Any]]) -> None:
    published = {n for n, s in services.items() if s.get("ports")}
    assert published == {"proxy", "broker"}
    broker_ports = [str(p).rsplit(":", 1)[-1] for p in services["broker"]["ports"]]
    assert broker_ports == [str(broker_listener_port(services))]
    proxy_ports = [str(p).rsplit(":", 1)[-1] for p in services["proxy"]["ports"]]
    assert proxy_ports == [env_of(services["proxy"])["EMS_NGINX_LISTEN"]]


def test_data_lives_in_volumes(raw: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    declared = set(raw["volumes"])

    def mounts(name: str) -> dict[str, str]:
        pairs = (str(v).split(":")[:2] for v in services[name].get("volumes", []))
        return {target: source for source, target in pairs}

    assert mounts("db")["/var/lib/postgresql/data"] in declared
    # The broker's persistence (queued messages of persistent sessions) survives a restart, and
    # broker-init writes into the very volumes the broker reads.
    for path in ("/mosquitto/config", "/mosquitto/data"):
        assert mounts("broker")[path] == mounts("broker-init")[path]
        assert mounts("broker")[path] in declared


# --- secrets --------------------------------------------------------------------------------------


def test_secrets_are_required_and_never_defaulted(raw: dict[str, Any]) -> None:
    text = COMPOSE.read_text()
    for name in SECRETS:
        refs = re.findall(r"\$\{" + name + r"([^}]*)\}", text)
        assert refs, f"{name} is never used"
        for modifier in refs:
            assert modifier.startswith(":?"), f"${{{name}{modifier}}} must be ${{{name}:?…}}"
    # Any variable that looks like a secret is a required reference, never a literal.
    for svc_name, svc in raw["services"].items():
        for key, value in (svc.get("environment") or {}).items():
            if re.search(r"PASSWORD|SECRET", key):
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", str(value)), (svc_name, key, value)
    for missing in SECRETS:
        incomplete = {k: v for k, v in SECRETS.items() if k != missing}
        with pytest.raises(MissingVariable, match=missing):
            interpolate(raw, incomplete)


def test_the_image_bakes_in_no_secret_and_runs_unprivileged(
    services: dict[str, dict[str, Any]],
) -> None:
    dockerfiles = {
        s["build"]["dockerfile"] for s in services.values() if isinstance(s.get("build"), dict)
    }
    assert dockerfiles == {"docker/ems.Dockerfile"}
    text = (ROOT / "docker" / "ems.Dockerfile").read_text()
    assert not re.search(r"^\s*(ARG|ENV)\b.*(PASSWORD|SECRET)", text, re.M | re.I)
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", text, re.M)
    assert "uv sync --locked --no-dev" in text
    assert re.findall(r"^USER (\S+)", text, re.M)[-1] not in {"root", "0"}


# --- hub and portal settings ----------------------------------------------------------------------


def db_host_port(url: str) -> tuple[str | None, int | None]:
    parts = urlsplit(url)
    assert parts.password is None, "the password goes in PGPASSWORD, not in the URL"
    return parts.hostname, parts.port


def test_hub_services_configure_exactly_what_the_hub_reads(
    services: dict[str, dict[str, Any]],
) -> None:
    hubs = named(services, "hub")
    assert len(hubs) >= 2
    known = names_read(load_hub_settings)
    local = hub_env(StackConfig(Path("/x"), "127.0.0.1", 1, 2, 3, 4), 1, 5, "dsn", _secrets())
    client_ids, groups = set(), set()
    for name, svc in hubs.items():
        env = env_of(svc)
        own = {k for k in env if k.startswith("HUB_")}
        assert own <= known, f"{name} sets variables the hub never reads: {own - known}"
        assert set(env) - own <= set(FOREIGN_ENV), name
        assert set(local) <= own, f"{name} lacks what `ems up` gives a hub: {set(local) - own}"
        settings = load_hub_settings(env)  # every required variable present and valid
        assert settings.mqtt_host == "broker" and settings.mqtt_username == hub_user(replica(name))
        # The broker accepts an account only under the client id pinned to it: its name.
        assert settings.client_id == settings.mqtt_username
        assert settings.mqtt_port == broker_listener_port(services)
        assert db_host_port(settings.database_url) == ("db", 5432)
        assert settings.http_host == "0.0.0.0"  # noqa: S104 - reachable for Prometheus
        assert health_port(svc) == settings.http_port
        assert svc["command"] == ["python", "-m", "hub"]
        client_ids.add(settings.client_id)
        groups.add(settings.share_group)
    assert len(client_ids) == len(hubs), "each hub needs its own persistent session"
    assert groups == {"hub"}, "all hubs in one share group, so each reading goes to one hub"


def test_portal_services_configure_exactly_what_the_portal_reads(
    services: dict[str, dict[str, Any]],
) -> None:
    portals = named(services, "portal")
    assert len(portals) >= 2
    known = names_read(load_portal_settings)
    local = portal_env(StackConfig(Path("/x"), "127.0.0.1", 1, 2, 3, 4), 1, 5, "dsn", _secrets())
    instances = set()
    for name, svc in portals.items():
        env = env_of(svc)
        own = {k for k in env if k.startswith("PORTAL_")}
        assert own <= known, f"{name} sets variables the portal never reads: {own - known}"
        assert set(env) - own <= set(FOREIGN_ENV), name
        assert set(local) <= own, f"{name} lacks what `ems up` gives a portal: {set(local) - own}"
        settings = load_portal_settings(env)
        assert settings.mqtt_host == "broker"
        assert settings.mqtt_username == portal_user(replica(name))  # one account each
        assert settings.mqtt_port == broker_listener_port(services)
        assert db_host_port(settings.database_url) == ("db", 5432)
        assert settings.http_host == "0.0.0.0"  # noqa: S104 - nginx reaches it over the network
        assert health_port(svc) == settings.http_port
        assert svc["command"] == ["python", "-m", "portal"]
        instances.add(settings.instance_id)
    assert len(instances) == len(portals)


def _secrets() -> dict[str, str]:
    return {"hub_mqtt_password": "h", "portal_mqtt_password": "p", "jwt_secret": "j"}


def test_one_shots_run_the_ems_commands(services: dict[str, dict[str, Any]]) -> None:
    migrate = services["migrate"]
    script = migrate["command"][-1]
    assert "ems migrate" in script
    admin = shlex.split(script.split("&&")[1])
    args = build_parser().parse_args(admin[1:])
    assert args.func.__name__ == "cmd_admin_create"
    assert args.password_env in env_of(migrate)
    assert db_host_port(env_of(migrate)["EMS_DATABASE_URL"]) == ("db", 5432)

    init = services["broker-init"]
    assert init["command"][:2] == ["ems", "broker-config"]
    args = build_parser().parse_args(init["command"][1:])  # options the CLI really has
    assert args.bootstrap and args.output == "/mosquitto/config/mosquitto.conf"
    assert args.host == "0.0.0.0"  # noqa: S104 - the broker's listener inside its container
    assert Path(args.dynsec_file).parent == Path(args.data_dir) == Path("/mosquitto/data")
    # A broker account for every replica (pinned to its client id): none left without one.
    assert args.hubs == len(named(services, "hub"))
    assert args.portals == len(named(services, "portal"))
    env = env_of(init)
    assert {"EMS_HUB_MQTT_PASSWORD", "EMS_PORTAL_MQTT_PASSWORD"} <= set(env)
    # The plugin path inside the eclipse-mosquitto image, and its mosquitto user's uid.
    assert env["EMS_MOSQUITTO_DYNSEC_PLUGIN"] == "/usr/lib/mosquitto_dynamic_security.so"
    assert init["user"] == "1883:1883"
    assert "command" not in services["broker"]  # reads /mosquitto/config/mosquitto.conf


def test_infrastructure_health_checks_probe_the_right_thing(
    services: dict[str, dict[str, Any]],
) -> None:
    db = services["db"]
    check = " ".join(db["healthcheck"]["test"][1:])
    assert "pg_isready" in check
    assert (
        f"-U {env_of(db)['POSTGRES_USER']}" in check and f"-d {env_of(db)['POSTGRES_DB']}" in check
    )
    broker = services["broker"]
    check = broker["healthcheck"]["test"][1]
    argv = shlex.split(check)
    assert argv[0] == "mosquitto_sub" and "-E" in argv
    assert argv[argv.index("-u") + 1] == argv[argv.index("-i") + 1] == HEALTHCHECK_USER
    assert argv[argv.index("-p") + 1] == str(broker_listener_port(services))
    # "$$VAR" in compose.yaml is "$VAR" for the container's shell: its own environment.
    password = argv[argv.index("-P") + 1]
    assert password.startswith("$") and password[1:] in env_of(broker)


# --- the reverse proxy ----------------------------------------------------------------------------


@dataclass
class Directive:
    name: str
    args: list[str]
    block: list[Directive] | None = field(default=None)

    def find(self, name: str, *args: str) -> Iterator[Directive]:
        for d in self.block or []:
            if d.name == name and (not args or d.args[: len(args)] == list(args)):
                yield d

    def one(self, name: str, *args: str) -> Directive:
        found = list(self.find(name, *args))
        assert len(found) == 1, f"expected one {name} {args}, found {len(found)}"
        return found[0]

    def values(self, name: str) -> list[list[str]]:
        return [d.args for d in self.find(name)]


def parse_nginx(text: str) -> Directive:
    text = re.sub(r"(?m)(^|\s)#.*$", "", text)
    tokens = re.findall(r"\"[^\"]*\"|'[^']*'|[{};]|[^\s{};]+", text)
    pos = 0

    def block() -> list[Directive]:
        nonlocal pos
        out: list[Directive] = []
        words: list[str] = []
        while pos < len(tokens):
            tok = tokens[pos]
            pos += 1
            if tok == ";":
                out.append(Directive(words[0], words[1:]))
                words = []
            elif tok == "{":
                out.append(Directive(words[0], words[1:], block()))
                words = []
            elif tok == "}":
                return out
            else:
                words.append(tok)
        assert not words, f"unterminated directive {words}"
        return out

    return Directive("main", [], block())


def envsubst(text: str, env: Mapping[str, str], name_filter: str) -> str:
    """The nginx image's template step: only variables that are set and match the filter."""
    names = {k for k in env if re.search(name_filter, k)}
    pattern = re.compile(r"\$\{(\w+)\}|\$(\w+)")
    return pattern.sub(lambda m: env[n] if (n := m[1] or m[2]) in names else m[0], text)


def seconds(value: str) -> int:
    m = re.fullmatch(r"(\d+)(s|m|h)?", value)
    assert m, value
    return int(m[1]) * {"s": 1, "m": 60, "h": 3600, None: 1}[m[2]]


def compose_site(services: dict[str, dict[str, Any]]) -> Directive:
    proxy = services["proxy"]
    mounts = [str(v).split(":") for v in proxy["volumes"]]
    source = next(s for s, target, *_ in mounts if target.startswith("/etc/nginx/templates/"))
    assert (ROOT / source).resolve() == nginx.SITE_TEMPLATE
    env = env_of(proxy)
    text = envsubst(nginx.SITE_TEMPLATE.read_text(), env, env["NGINX_ENVSUBST_FILTER"])
    assert not re.search(r"\$\{?EMS_", text), "a placeholder left unsubstituted"
    return Directive("http", [], parse_nginx(text).block)


def local_site() -> Directive:
    text = nginx.render_config(Path("/srv/ems/nginx"), ["127.0.0.1:9001", "127.0.0.1:9002"], "8000")
    return parse_nginx(text).one("http")


@pytest.mark.parametrize("where", ["compose", "ems up"])
def test_the_proxy_balances_the_portals_and_upgrades_websockets(
    where: str, services: dict[str, dict[str, Any]]
) -> None:
    http = compose_site(services) if where == "compose" else local_site()
    upstream = http.one("upstream")
    servers = [a[0] for a in upstream.values("server")]
    if where == "compose":
        expected = [f"{n}:{load_portal_settings(env_of(s)).http_port}" for n, s in
                    named(services, "portal").items()]  # fmt: skip
        assert sorted(servers) == sorted(expected)
    else:
        assert servers == ["127.0.0.1:9001", "127.0.0.1:9002"]
    assert http.one("map", "$http_upgrade", "$connection_upgrade").block
    server = http.one("server")
    ws = server.one("location", "/ws")
    root = server.one("location", "/")
    for loc in (ws, root):
        assert loc.values("proxy_pass") == [[f"http://{upstream.args[0]}"]]
        assert ["1.1"] in loc.values("proxy_http_version")
        headers = {a[0]: a[1] for a in loc.values("proxy_set_header")}
        # A location with its own proxy_set_header inherits none: each names them all.
        assert headers["Host"] == "$http_host"  # with the port: the WebSocket origin check
        # The peer's address only: a client's own X-Forwarded-For must not reach the portal.
        assert headers["X-Forwarded-For"] == "$remote_addr"
        assert headers["X-Forwarded-Proto"] == "$scheme"
    ws_headers = {a[0]: a[1] for a in ws.values("proxy_set_header")}
    assert ws_headers["Upgrade"] == "$http_upgrade"
    assert ws_headers["Connection"] == "$connection_upgrade"
    assert seconds(ws.one("proxy_read_timeout").args[0]) >= 3600
    assert server.one("location", "^~", "/metrics").values("deny") == [["all"]]


def test_ems_up_nginx_writes_only_under_its_own_directory() -> None:
    prefix = Path("/srv/ems/nginx")
    main = parse_nginx(nginx.render_config(prefix, ["127.0.0.1:9001"], "127.0.0.1:8000"))
    http = main.one("http")
    paths = [main.one("pid").args[0], main.one("error_log").args[0]]
    paths += [http.one("access_log").args[0]]
    paths += [d.args[0] for d in http.block or [] if d.name.endswith("_temp_path")]
    assert len(paths) == 3 + len(nginx.TEMP_PATHS)
    for p in paths:
        assert Path(p).is_relative_to(prefix), p
    assert not list(main.find("user")), "the master runs as the service user, never as root"
    assert http.one("server").one("listen").args == ["127.0.0.1:8000"]


def test_the_deployment_guide_documents_every_variable(raw: dict[str, Any]) -> None:
    guide = (ROOT / "docs" / "deployment.md").read_text()
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", guide))
    read = {n for n in names_read(load_hub_settings) if n.startswith("HUB_")}
    read |= {n for n in names_read(load_portal_settings) if n.startswith("PORTAL_")}
    # What an operator sets in .env: every ${VAR} compose.yaml interpolates.
    interpolated = set(re.findall(r"(?<!\$)\$\{(\w+)", json.dumps(raw)))
    missing = (read | interpolated) - documented
    assert not missing, f"docs/deployment.md does not document {sorted(missing)}"


def test_portals_trust_forwarded_headers_from_the_proxy_alone(
    raw: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    import ipaddress

    proxy_networks = services["proxy"]["networks"]
    assert list(proxy_networks) == ["edge"], "nginx is on the edge network only"
    proxy_address = ipaddress.ip_address(proxy_networks["edge"]["ipv4_address"])
    edge = interpolate(raw, SECRETS)["networks"]["edge"]
    assert proxy_address in ipaddress.ip_network(edge["ipam"]["config"][0]["subnet"])
    for name, svc in named(services, "portal").items():
        assert "edge" in svc["networks"], f"nginx cannot reach {name}"
        settings = load_portal_settings(env_of(svc))
        assert settings.trusted_proxies == (str(proxy_address),), name
        assert settings.cookie_secure, f"{name}: session cookies are Secure by default"


def test_ems_up_portals_trust_their_nginx_and_a_lone_portal_trusts_nobody() -> None:
    def trusted(host: str, replicas: int) -> tuple[str, ...]:
        cfg = StackConfig(Path("/x"), host, 1, 2, 3, 4, replicas=replicas)
        env = portal_env(cfg, 1, 5, "postgresql://ems@db/ems", _secrets())
        return load_portal_settings({**env, "PORTAL_JWT_SECRET": "j" * 32}).trusted_proxies

    assert trusted("127.0.0.1", 1) == ()
    assert trusted("127.0.0.1", 2) == ("127.0.0.1",)
    assert trusted("0.0.0.0", 2) == ("127.0.0.1",)  # noqa: S104 - nginx connects over loopback
    assert trusted("192.0.2.10", 3) == ("192.0.2.10",)
