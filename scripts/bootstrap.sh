#!/usr/bin/env bash
# Installs what EMS needs on a Debian/Ubuntu machine, idempotently:
#   system packages (apt, through sudo when not root), the `ems` service user when run as root
#   (PostgreSQL refuses to run as root), uv, the locked Python environment and the front-end
#   packages. Every step checks first, so a second run does nothing but verify.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
else
  echo "bootstrap: not root and no sudo: system packages can only be checked, not installed" >&2
  SUDO="__none__"
fi

# --- system packages -------------------------------------------------------------------------
# package -> a file it provides; dpkg-query decides whether it is installed.
need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for pkg in mosquitto mosquitto-clients postgresql chromium nginx python3-venv ca-certificates; do
  have_pkg "$pkg" || need+=("$pkg")
done
if [ -f portal/frontend/package.json ]; then
  command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
fi
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$SUDO" = "__none__" ]; then
    echo "bootstrap: missing system packages: ${need[*]} (need root or sudo to install them)" >&2
    exit 1
  fi
  say "installing system packages: ${need[*]}"
  $SUDO apt-get update -qq
  # The Debian packages start their own services where systemd runs; EMS never uses those
  # (it starts private instances on its own ports), so stop them from grabbing memory or ports.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
  if [ -d /run/systemd/system ]; then
    for svc in mosquitto nginx postgresql; do
      case " ${need[*]} " in
        *" $svc "*)
          # Only what this run installed: a service the machine already had is left alone.
          say "stopping and disabling the system $svc service (EMS runs its own instances)"
          $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || true
          ;;
      esac
    done
  fi
fi

# --- service user (root only) ------------------------------------------------------------------
if [ "$(id -u)" -eq 0 ]; then
  svc="${EMS_SERVICE_USER:-ems}"
  if ! id "$svc" >/dev/null 2>&1; then
    say "creating unprivileged service user '$svc' (PostgreSQL and Mosquitto run as it under root)"
    useradd --system --user-group --no-create-home --shell /usr/sbin/nologin "$svc"
  fi
fi

# --- uv ---------------------------------------------------------------------------------------
if ! command -v uv >/dev/null 2>&1 && [ ! -x .tools/bin/uv ]; then
  say "installing uv into .tools/ (a private virtual environment)"
  python3 -m venv .tools
  .tools/bin/pip install -q --disable-pip-version-check uv
fi
UV="$(command -v uv 2>/dev/null || echo .tools/bin/uv)"

# --- locked Python environment -----------------------------------------------------------------
export UV_PYTHON_DOWNLOADS=never
"$UV" sync --locked --quiet

# --- front-end packages --------------------------------------------------------------------------
# uPlot, which the portal serves, and the development tools `make check` runs (ESLint): npm ci
# with the dev dependencies even where NODE_ENV=production would leave them out. node_modules
# records the hash of the lockfile it was installed from; a different lock (a pull, a branch
# switch, a copied node_modules) installs again, the same one skips (modification times would
# not tell: git and cp set them to now).
if [ -f portal/frontend/package.json ]; then
  lock_hash="$(sha256sum portal/frontend/package-lock.json | cut -d' ' -f1)"
  stamp=portal/frontend/node_modules/.ems-lock-sha256
  if [ "$(cat "$stamp" 2>/dev/null)" != "$lock_hash" ]; then
    say "installing front-end packages (npm ci)"
    (cd portal/frontend && npm ci --include=dev --no-audit --no-fund --loglevel=error)
    echo "$lock_hash" >"$stamp"
  fi
fi
