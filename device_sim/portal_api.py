"""The portal's REST API, as much of it as ``ems-sim provision`` and ``check`` need.

Paths are the contract of ARCHITECTURE.md section 6. Failures become ``PortalError`` with a
message a person can act on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from types import TracebackType
from typing import Any
from uuid import UUID

import httpx


class PortalError(RuntimeError):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class CreatedDevice:
    id: UUID
    mqtt_username: str
    mqtt_password: str


@dataclass(frozen=True, slots=True)
class HourRow:
    hour: datetime
    energy_kwh: float
    quality: str


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        for key in ("detail", "message", "error"):
            if body.get(key):
                return str(body[key])[:200]
    return str(body)[:200]


class PortalClient:
    def __init__(
        self,
        base_url: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 15.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._http = httpx.AsyncClient(base_url=self.base_url, transport=transport, timeout=timeout)

    async def __aenter__(self) -> PortalClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.ConnectError:
            raise PortalError(
                f"the portal at {self.base_url} refused the connection - is it running? "
                "(ems up starts one; or pass --portal URL)"
            ) from None
        except httpx.TimeoutException:
            raise PortalError(
                f"the portal at {self.base_url} did not answer {method} {path} "
                f"within {self._timeout:.0f} s"
            ) from None
        except httpx.HTTPError as exc:
            raise PortalError(f"{method} {self.base_url}{path}: {exc}") from None
        if response.status_code >= 400:
            raise PortalError(
                f"{method} {path} -> {response.status_code}: {_detail(response)}",
                response.status_code,
            )
        return response.json() if response.content else None

    async def login(self, username: str, password: str) -> None:
        try:
            body = await self._call(
                "POST", "/api/v1/auth/login", json={"username": username, "password": password}
            )
        except PortalError as exc:
            if exc.status in (400, 401, 403):
                raise PortalError(
                    f"login as {username!r} failed ({exc.status}) - check --admin-user and "
                    "--admin-password (or EMS_SIM_ADMIN_PASSWORD)",
                    exc.status,
                ) from None
            raise
        token = body.get("token") if isinstance(body, dict) else None
        if not token:
            raise PortalError("the portal's login answer has no token")
        # Bearer only: a cookie would make the portal treat writes as browser writes (CSRF).
        self._http.cookies.clear()
        self._http.headers["Authorization"] = f"Bearer {token}"

    async def create_device(
        self,
        name: str,
        *,
        max_hourly_kwh: float,
        interval_s: int = 600,
        meter_kind: str = "cumulative",
        rated_power_w: float | None = None,
        description: str = "",
        address: str = "",
    ) -> CreatedDevice:
        body: dict[str, Any] = {
            "name": name,
            "description": description,
            "address": address,
            "max_hourly_kwh": max_hourly_kwh,
            "meter_kind": meter_kind,
            "interval_s": interval_s,
        }
        if rated_power_w is not None:
            body["rated_power_w"] = rated_power_w
        answer = await self._call("POST", "/api/v1/devices", json=body)
        try:
            device_id = UUID(str(answer["id"]))
            return CreatedDevice(
                device_id, str(answer.get("mqtt_username") or device_id), answer["mqtt_password"]
            )
        except (KeyError, TypeError, ValueError):
            raise PortalError(
                f"POST /api/v1/devices answered without id and mqtt_password: {str(answer)[:200]}"
            ) from None

    async def user_id(self, username: str) -> UUID:
        answer = await self._call("GET", "/api/v1/users")
        users = answer.get("items", answer.get("users", [])) if isinstance(answer, dict) else answer
        for user in users or []:
            if isinstance(user, dict) and user.get("username") == username:
                return UUID(str(user["id"]))
        raise PortalError(f"no user named {username!r} (create it in the portal first)")

    async def set_owner(self, device_id: UUID, owner_id: UUID) -> None:
        path = f"/api/v1/devices/{device_id}/owner"
        await self._call("PUT", path, json={"owner_id": str(owner_id)})

    async def delete_device(self, device_id: UUID) -> None:
        await self._call("DELETE", f"/api/v1/devices/{device_id}")

    async def hourly(self, device_id: UUID, day: date) -> list[HourRow]:
        path = f"/api/v1/devices/{device_id}/consumption/hourly"
        answer = await self._call("GET", path, params={"date": day.isoformat()})
        rows = answer.get("items", answer.get("hours", [])) if isinstance(answer, dict) else answer
        out = []
        for row in rows or []:
            if row.get("energy_kwh") is None:
                continue  # an hour of the day with no data yet (quality "missing")
            hour = datetime.fromisoformat(str(row["hour"]))
            out.append(HourRow(hour, float(row["energy_kwh"]), str(row.get("quality", ""))))
        return out
