# syntax=docker/dockerfile:1
# One image for every EMS process: the hub (`python -m hub`, the default), the portal
# (`python -m portal`), the migration one-shot (`ems migrate`) and the broker's configuration
# one-shot (`ems broker-config`). compose.yaml chooses the command per service.
#
#   docker build -f docker/ems.Dockerfile -t ems:local .
#
# Dependencies come from the lockfiles only (uv.lock, portal/frontend/package-lock.json); the
# image reaches no network at run time.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- front-end packages the portal serves itself (never from a CDN) -------------------------
FROM node:20-bookworm-slim AS frontend
WORKDIR /src/portal/frontend
COPY portal/frontend/package.json portal/frontend/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --loglevel=error

# --- the locked Python environment -------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
# Dependencies first (a layer that changes only with uv.lock), then the project itself.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    uv sync --locked --no-dev --no-install-project
COPY . /app
# The project is installed in place (not as a wheel): ems/broker.py and ems/nginx.py read their
# templates from broker/ and deploy/ next to the packages.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev \
    && python -m compileall -q hub portal ems migrations device_sim firmware_stub

# --- runtime -----------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
# The processes run as an unprivileged user. /mosquitto belongs to uid 1883 (the mosquitto user
# of the eclipse-mosquitto image): the broker-init one-shot runs this image as that uid to write
# the broker's configuration into volumes the broker then owns.
RUN groupadd --system --gid 10001 ems \
    && useradd --system --uid 10001 --gid ems --no-create-home --shell /usr/sbin/nologin ems \
    && mkdir -p /mosquitto/config /mosquitto/data /mosquitto/log \
    && chown -R 1883:1883 /mosquitto
COPY --from=build /app /app
COPY --from=frontend /src/portal/frontend/node_modules /app/portal/frontend/node_modules
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
USER ems
EXPOSE 8000 8001
CMD ["python", "-m", "hub"]
