"""Child-process plumbing shared by `ems up` and the test harness.

PostgreSQL refuses to run as root and Mosquitto drops to its own user, so when we are root the
servers run as an unprivileged service user (``EMS_SERVICE_USER``, default ``ems``, created by
``make install``) that owns their data directories.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SERVICE_USER = "ems"


class StackError(RuntimeError):
    """A problem a person can fix; the message says what and how."""


@dataclass(frozen=True, slots=True)
class RunAs:
    """Who the server processes run as (None fields: the current user)."""

    user: str | None
    uid: int
    gid: int

    @classmethod
    def current(cls) -> RunAs:
        return cls(None, os.getuid(), os.getgid())

    @classmethod
    def detect(cls, environ: Mapping[str, str] | None = None) -> RunAs:
        env = os.environ if environ is None else environ
        if os.geteuid() != 0:
            return cls.current()
        name = env.get("EMS_SERVICE_USER", DEFAULT_SERVICE_USER)
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise StackError(
                f"running as root, but the service user {name!r} does not exist — "
                "run `make install` (it creates it) or set EMS_SERVICE_USER to an unprivileged user"
            ) from None
        return cls(name, entry.pw_uid, entry.pw_gid)

    def can_reach(self, path: Path) -> bool:
        """Can the service user traverse every existing directory above ``path``?"""
        if self.user is None:
            return True
        for parent in [path, *path.parents]:
            if not parent.exists():
                continue
            st = parent.stat()
            if st.st_uid == self.uid:
                continue
            if not st.st_mode & (0o010 if st.st_gid == self.gid else 0o001):
                return False
        return True

    def server_dir(self, preferred: Path) -> Path:
        """``preferred`` if the service user can reach it, else a directory under /var/lib/ems.

        Running as root from a home directory (mode 700) is common; PostgreSQL and Mosquitto,
        running as the service user, could not reach their data there.
        """
        if self.can_reach(preferred):
            return preferred
        digest = hashlib.sha256(str(preferred.resolve()).encode()).hexdigest()[:12]
        fallback = Path("/var/lib/ems") / digest
        fallback.mkdir(parents=True, exist_ok=True)
        os.chmod(fallback.parent, 0o755)  # noqa: S103 - a directory of directories
        self.give(fallback)
        return fallback

    def give(self, path: Path) -> None:
        """Make ``path`` (a directory tree we created) belong to the service user."""
        if self.user is None:
            return
        os.chown(path, self.uid, self.gid, follow_symlinks=False)
        if not path.is_dir():
            return
        for root, dirs, files in os.walk(path):
            os.chown(root, self.uid, self.gid)
            for name in [*dirs, *files]:
                os.chown(os.path.join(root, name), self.uid, self.gid, follow_symlinks=False)

    def popen(
        self,
        argv: Sequence[str],
        *,
        log: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        out = log.open("ab")
        try:
            # start_new_session: Ctrl-C in the terminal reaches only the supervisor, which then
            # stops children in order (hub before database), instead of every child at once.
            return subprocess.Popen(
                list(argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                user=self.uid if self.user else None,
                group=self.gid if self.user else None,
                extra_groups=[] if self.user else None,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        finally:
            out.close()

    def run(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> str:
        proc = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            env=dict(env) if env is not None else None,
            user=self.uid if self.user else None,
            group=self.gid if self.user else None,
            extra_groups=[] if self.user else None,
            check=False,
            cwd="/",
        )
        if proc.returncode != 0:
            raise StackError(f"{argv[0]} failed ({proc.returncode}): {proc.stderr.strip()[-800:]}")
        return proc.stdout


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if the supervisor dies (even by SIGKILL)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def ensure_port_free(port: int, what: str, host: str = "127.0.0.1") -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            raise StackError(
                f"port {port} on {host} is already in use, so {what} cannot start there — "
                f"stop whatever is listening (`ss -ltnp 'sport = :{port}'`) or choose another port"
            ) from None


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def wait_until(
    check: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    proc: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise StackError(f"{what} exited with code {proc.returncode}{_tail(log)}")
        if check():
            return
        time.sleep(0.05)
    raise StackError(f"{what} did not become ready within {timeout:.0f} s{_tail(log)}")


def _tail(log: Path | None, lines: int = 15) -> str:
    if log is None or not log.exists():
        return ""
    text = log.read_text(errors="replace").splitlines()[-lines:]
    return "\n  log " + str(log) + ":\n    " + "\n    ".join(text)


def stop_process(
    proc: subprocess.Popen[bytes], *, sig: int = signal.SIGTERM, timeout: float = 20.0
) -> int:
    """Signal, wait, and kill only if the process does not stop within ``timeout``."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    return proc.returncode
