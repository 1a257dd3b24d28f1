"""nginx in front of the portal replicas for `ems up --replicas N`: configuration and process.

The proxy rules live in ``deploy/nginx/ems.conf.template``, shared with compose.yaml. Here that
site is wrapped in a complete configuration whose pid file, logs and temporary directories are all
under the proxy's own directory, so nginx never touches /etc or /var. As root, the master process
runs as the unprivileged service user (ems.procs.RunAs) — nginx then needs no `user` directive and
never holds root, which it does not need for a port above 1024.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from ems.procs import RunAs, StackError

SITE_TEMPLATE = Path(__file__).resolve().parent.parent / "deploy" / "nginx" / "ems.conf.template"
TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def nginx_binary() -> str:
    found = os.environ.get("EMS_NGINX_BIN") or shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(found).exists():
        raise StackError(
            "nginx not found — `ems up --replicas N` puts it in front of the portals; "
            "run `make install` (installs nginx) or set EMS_NGINX_BIN"
        )
    return found


def upstream_servers(upstreams: Sequence[str]) -> str:
    """The ``server`` lines of the portal upstream, as ``EMS_PORTAL_UPSTREAMS`` holds them."""
    return " ".join(f"server {u} max_fails=3 fail_timeout=10s;" for u in upstreams)


def proxy_source_addresses(upstream_host: str) -> list[str]:
    """The addresses nginx's connections to portals on ``upstream_host`` come from: what the
    portals must trust for X-Forwarded-* (PORTAL_TRUSTED_PROXIES), and nothing more.

    A connection to a local address leaves from that address; to the unspecified address
    (0.0.0.0, ::) it goes over loopback.
    """
    try:
        hosts = [ipaddress.ip_address(upstream_host)]
    except ValueError:  # a name such as localhost: every address it stands for
        infos = socket.getaddrinfo(upstream_host, None, proto=socket.IPPROTO_TCP)
        hosts = [ipaddress.ip_address(info[4][0]) for info in infos]
    found: list[str] = []
    for host in hosts:
        if host.is_unspecified:
            host = ipaddress.ip_address("127.0.0.1" if host.version == 4 else "::1")
        if str(host) not in found:
            found.append(str(host))
    return found


def render_site(upstreams: Sequence[str], listen: str) -> str:
    """The shared site template with the portal replicas and the listen address filled in."""
    if not upstreams:
        raise ValueError("the proxy needs at least one portal replica")
    # safe_substitute: every other `$name` in the template is an nginx variable, left alone.
    return Template(SITE_TEMPLATE.read_text()).safe_substitute(
        EMS_PORTAL_UPSTREAMS=upstream_servers(upstreams), EMS_NGINX_LISTEN=listen
    )


def render_config(prefix: Path, upstreams: Sequence[str], listen: str, workers: int = 2) -> str:
    """A complete nginx.conf whose every writable path is under ``prefix``."""
    temp = "\n".join(f"    {name}_temp_path {prefix}/temp/{name};" for name in TEMP_PATHS)
    site = "\n".join(
        f"    {line}" if line else "" for line in render_site(upstreams, listen).split("\n")
    )
    return (
        "# Written by `ems up` at every start; edit deploy/nginx/ems.conf.template instead.\n"
        f"worker_processes {workers};\n"
        f"pid {prefix}/nginx.pid;\n"
        f"error_log {prefix}/logs/error.log notice;\n"
        "events {\n    worker_connections 1024;\n}\n"
        "http {\n"
        f"    access_log {prefix}/logs/access.log;\n"
        f"{temp}\n"
        "    default_type application/octet-stream;\n"
        f"{site}\n"
        "}\n"
    )


@dataclass
class NginxProxy:
    """nginx on host:port balancing over ``upstreams`` (host:port of each portal replica)."""

    base_dir: Path
    port: int
    upstreams: list[str]
    run_as: RunAs
    host: str = "127.0.0.1"
    workers: int = 2
    conf_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.conf_path = self.base_dir / "nginx.conf"

    def prepare(self) -> None:
        """Write the configuration and the directories nginx writes to; check it with `nginx -t`."""
        for sub in ("logs", *(f"temp/{name}" for name in TEMP_PATHS)):
            (self.base_dir / sub).mkdir(parents=True, exist_ok=True)
        self.conf_path.write_text(
            render_config(self.base_dir, self.upstreams, f"{self.host}:{self.port}", self.workers)
        )
        self.run_as.give(self.base_dir)
        self.run_as.run([*self._command(), "-t", "-q"])

    def argv(self) -> list[str]:
        """The foreground command line (`daemon off`): the supervisor owns the process."""
        return [*self._command(), "-g", "daemon off;"]

    def _command(self) -> list[str]:
        # -e: errors from before the configuration is read go to stderr (our log), not /var/log.
        return [nginx_binary(), "-p", str(self.base_dir), "-c", str(self.conf_path), "-e", "stderr"]

    def popen(self, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
        return self.run_as.popen(self.argv(), log=log, env=env, cwd=self.base_dir)
