"""What the OpenAPI document (/schema) says beyond the handlers' signatures: who must sign in,
the error answers of every operation, and the unknown fields the request bodies refuse.

Added in one place, from what the handler is, not copied onto each route: every API operation
documents 400 (a value the schema rules out) and 503 (database or broker away); unless it is
public (``opt={"public": True}``, the same flag the login guard reads) it needs the Bearer token
and documents 401, and 403 when it needs an administrator or is a write (a cookie session
without its CSRF token); 404 when its path names a resource; and the errors its handler lists
in ``opt={"errors": (...)}`` (409, 422, 429…). The answers' body is always an ``ErrorBody``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from litestar import Request, Response
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Schema
from litestar.plugins import ReceiveRoutePlugin
from litestar.routes import BaseRoute, HTTPRoute
from litestar.status_codes import HTTP_204_NO_CONTENT
from litestar.typing import FieldDefinition

from portal.auth.guards import SAFE_METHODS, requires_admin
from portal.errors import (
    BadRequest,
    ErrorBody,
    Forbidden,
    NotAuthenticated,
    NotFound,
    PortalError,
    ServiceUnavailable,
)

ERRORS_OPT = "errors"
BEARER = "BearerToken"  # the security scheme in create_app's OpenAPIConfig


def _needs_admin(handler: HTTPRouteHandler) -> bool:
    return any(requires_admin in (layer.guards or ()) for layer in handler.ownership_layers)


def documented_errors(handler: HTTPRouteHandler, route: HTTPRoute) -> list[type[PortalError]]:
    """The errors an API operation can answer, by what the handler is (see the module doc)."""
    public = bool(handler.opt.get("public"))
    writes = not handler.http_methods <= SAFE_METHODS
    errors: list[type[PortalError]] = [BadRequest, ServiceUnavailable]
    if not public:
        errors.append(NotAuthenticated)
        if _needs_admin(handler) or writes:
            errors.append(Forbidden)
    if route.path_parameters:
        errors.append(NotFound)
    errors.extend(handler.opt.get(ERRORS_OPT, ()))
    return errors


def error_responses(errors: Iterable[type[PortalError]]) -> dict[int, ResponseSpec]:
    """One documented response per status: an ``ErrorBody``, described by the first error
    class of that status (``summary``)."""
    responses: dict[int, ResponseSpec] = {}
    for error in errors:
        responses.setdefault(
            error.status_code,
            ResponseSpec(
                data_container=ErrorBody,
                description=error.summary,
                generate_examples=False,
            ),
        )
    return dict(sorted(responses.items()))


class ErrorResponses(ReceiveRoutePlugin):
    """Documents each API operation's security and error responses as its route is registered
    (before /schema is first built). HTML pages (``opt={"page": True}``) are not in the
    document; a handler's own ``responses`` win over the standard ones."""

    def receive_route(self, route: BaseRoute) -> None:
        if not isinstance(route, HTTPRoute):
            return
        for handler in route.route_handlers:
            if handler.opt.get("page") or not handler.resolve_include_in_schema():
                continue
            if not handler.opt.get("public"):
                handler.security = [{BEARER: []}]
            responses = error_responses(documented_errors(handler, route))
            if handler.status_code == HTTP_204_NO_CONTENT:
                # Litestar documents a Response[None] as a JSON null; a 204 has no body at all.
                responses[HTTP_204_NO_CONTENT] = ResponseSpec(None, description="Done, no content")
            handler.responses = {**responses, **(handler.responses or {})}


class ClosedStructs(StructSchemaPlugin):
    """Request bodies declared ``forbid_unknown_fields=True`` answer 400 to an unknown field;
    the document says so (``additionalProperties: false``), so clients know before they try.

    Litestar's own struct plugin (not exported, hence the private import; uv.lock pins the
    version) builds the schema; user plugins are consulted before the built-in ones."""

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: Any) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        config = getattr(field_definition.type_, "__struct_config__", None)
        if config is not None and config.forbid_unknown_fields:
            schema.additional_properties = False
        return schema


async def answer_options(request: Request[Any, Any, Any]) -> Response[None] | None:
    """OPTIONS lists every method of the path in ``Allow``, as the document does.

    Litestar's automatic OPTIONS handler lists the methods of the route it was first created
    for; when a controller's handlers for one path are registered one by one, that misses
    some (OPTIONS /api/v1/users said "OPTIONS, POST"). The application's map is complete.
    """
    if request.method != "OPTIONS":
        return None
    handler = request.scope.get("route_handler")
    if handler is None:
        return None
    methods: set[str] = set()
    for path in handler.paths:
        methods.update(request.app.route_handler_method_map.get(path, {}))
    return Response(
        None, status_code=HTTP_204_NO_CONTENT, headers={"Allow": ", ".join(sorted(methods))}
    )
