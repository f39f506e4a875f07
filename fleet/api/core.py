"""The API object: key authentication, RFC 9457 problem details for every error, cursor pagination.

Errors are ``application/problem+json`` with ``type``, ``title``, ``status``, ``detail`` and, for a
validation failure (422), ``errors``: one ``{"field", "detail"}`` per bad field, every one named.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import date, datetime
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.db.models import Model, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.urls import URLPattern, URLResolver, path
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.security import APIKeyHeader, HttpBearer

from fleet.accounts import api_keys
from fleet.accounts.access import API_KEY_ATTRIBUTE
from fleet.commands.actions import CommandError
from fleet.mirror.writes import MirrorError
from fleet.models import ApiKey

PROBLEM_TYPE = "urn:solax-fleet:problem:"
PROBLEM_CONTENT_TYPE = "application/problem+json"
DEFAULT_LIMIT = 50
MAX_LIMIT = 200

_TITLES = {400: "Bad request", 401: "Not authenticated", 403: "Forbidden", 404: "Not found",
           405: "Method not allowed", 409: "Conflict", 422: "Validation failed", 500: "Server error"}
_SLUGS = {400: "bad-request", 401: "unauthenticated", 403: "forbidden", 404: "not-found",
          405: "method-not-allowed", 409: "conflict", 422: "validation", 500: "server-error"}


class Invalid(Exception):
    """A request that fails validation: ``errors`` maps each bad field (dotted, as in the body) to why."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class Problem(Exception):
    """Any other error with its status and detail (409, 400, ...)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def problem(status: int, detail: str, *, errors: dict[str, str] | None = None,
            headers: dict[str, str] | None = None) -> HttpResponse:
    """Return an RFC 9457 problem details response."""
    body: dict[str, Any] = {"type": PROBLEM_TYPE + _SLUGS.get(status, str(status)),
                            "title": _TITLES.get(status, "Error"), "status": status, "detail": detail}
    if errors is not None:
        body["errors"] = [{"field": name, "detail": text} for name, text in errors.items()]
    response = HttpResponse(json.dumps(body), status=status, content_type=PROBLEM_CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


# Authentication ------------------------------------------------------------------------------

def _authenticate(request: HttpRequest, presented: str | None) -> ApiKey | None:
    key = api_keys.authenticate(presented or "")
    if key is not None:
        setattr(request, API_KEY_ATTRIBUTE, key)
    return key


class BearerKey(HttpBearer):
    """``Authorization: Bearer sfk_...``"""

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        return _authenticate(request, token)


class HeaderKey(APIKeyHeader):
    """``X-API-Key: sfk_...``"""

    param_name = "X-API-Key"

    def authenticate(self, request: HttpRequest, key: str | None) -> ApiKey | None:
        return _authenticate(request, key)


api = NinjaAPI(
    title="solax-fleet API", version="1", urls_namespace="api-v1", auth=[BearerKey(), HeaderKey()],
    description="The fleet's groups, devices, commands, schedules and price plans, for other systems. "
                "Authenticate with an API key (Settings → API keys): `Authorization: Bearer <key>` or "
                "`X-API-Key: <key>`. Errors are RFC 9457 problem details.",
)


# Errors as problem details --------------------------------------------------------------------

def _field_of(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie", "form"):
        where = parts.pop(0)
        if where == "body" and len(parts) > 1:
            parts.pop(0)  # the view's parameter name ("payload"): the client never wrote it
        elif where == "body" and parts == ["payload"]:
            parts = ["body"]
    return ".".join(parts) or "body"


@api.exception_handler(NinjaValidationError)
def _validation(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    errors: dict[str, str] = {}
    for error in exc.errors:
        name = _field_of(error.get("loc", ()))
        errors.setdefault(name, str(error.get("msg", "invalid")))
    return problem(422, "The request has invalid fields: " + ", ".join(errors), errors=errors)


@api.exception_handler(Invalid)
def _invalid(request: HttpRequest, exc: Invalid) -> HttpResponse:
    return problem(422, "The request has invalid fields: " + ", ".join(exc.errors), errors=exc.errors)


@api.exception_handler(CommandError)
def _command_error(request: HttpRequest, exc: CommandError) -> HttpResponse:
    errors = {command_field(name): text for name, text in exc.errors.items()}
    return problem(422, "The command cannot be sent: " + ", ".join(errors), errors=errors)


@api.exception_handler(MirrorError)
def _mirror_error(request: HttpRequest, exc: MirrorError) -> HttpResponse:
    return problem(422, "The request cannot be sent: " + ", ".join(exc.errors), errors=dict(exc.errors))


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return problem(401, "A valid API key is required: Authorization: Bearer <key> or X-API-Key: <key>. "
                        "A revoked or unknown key is refused.", headers={"WWW-Authenticate": "Bearer"})


@api.exception_handler(PermissionDenied)
def _forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    return problem(403, str(exc) or "Forbidden.")


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return problem(404, str(exc) or "Not found.")


@api.exception_handler(Problem)
def _problem(request: HttpRequest, exc: Problem) -> HttpResponse:
    return problem(exc.status, exc.detail)


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return problem(exc.status_code, str(exc))


_TARGET_FIELDS = {"group", "groups", "sns", "selection"}


def command_field(name: str) -> str:
    """The body field a CommandError names: target fields under ``target``, action fields under ``action``."""
    if name in _TARGET_FIELDS:
        return f"target.{name}"
    if name == "target":
        return "target.kind"
    if name in ("start_by", "retry_of", "account", "approval", "cancel"):
        return name
    return f"action.{name}"


# Cursor pagination ---------------------------------------------------------------------------

def _value(obj: Model, name: str) -> Any:
    value = getattr(obj, name.lstrip("-"))
    return value.isoformat() if isinstance(value, date | datetime) else value


def keyset(request: HttpRequest, queryset: QuerySet[Any], order: tuple[str, ...], *, cursor: str | None,
           limit: int, salt: str, serialize: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """Return one page of ``queryset`` in ``order`` (unique: its last field is ``pk``) after ``cursor``,
    as ``{"items", "next_cursor", "next"}`` (one query). A cursor is the signed sort key of the last
    row shown: opaque, stable when rows are added, and refused (422) when it was altered or made for
    another list."""
    queryset = queryset.order_by(*order)
    if cursor:
        try:
            values = signing.loads(cursor, salt=f"api-cursor:{salt}")
        except signing.BadSignature:
            raise Invalid({"cursor": "not a cursor of this list: use the next link of a previous page"}) from None
        if not isinstance(values, list) or len(values) != len(order):
            raise Invalid({"cursor": "not a cursor of this list: use the next link of a previous page"})
        queryset = queryset.filter(_after(order, values))
    rows = list(queryset[:limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    next_url = None
    if more and rows:
        next_cursor = signing.dumps([_value(rows[-1], name) for name in order], salt=f"api-cursor:{salt}")
        query = request.GET.copy()
        query["cursor"] = next_cursor
        next_url = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
    return {"items": [serialize(row) for row in rows], "next_cursor": next_cursor, "next": next_url}


def _after(order: tuple[str, ...], values: list[Any]) -> Q:
    """Rows strictly after ``values`` in ``order`` (lexicographic over the fields)."""
    condition = Q()
    for i, name in enumerate(order):
        field = name.lstrip("-")
        step = Q(**{f"{field}__{'lt' if name.startswith('-') else 'gt'}": values[i]})
        for earlier, value in zip(order[:i], values[:i], strict=False):
            step &= Q(**{earlier.lstrip("-"): value})
        condition |= step
    return condition


# URLs ------------------------------------------------------------------------------------------

def _api_view(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Key-authenticated, not session-authenticated: no login redirect, never cached, and the
    405 ninja answers for a wrong method is a problem too."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = view(request, *args, **kwargs)
        if response.status_code == 405 and response.get("Content-Type", "") != PROBLEM_CONTENT_TYPE:
            allowed = response.get("Allow", "")
            response = problem(405, f"Allowed methods: {allowed}.", headers={"Allow": allowed})
        response["Cache-Control"] = "private, no-store"
        return response

    return login_not_required(wrapper)


def _unknown_path(request: HttpRequest, rest: str = "") -> HttpResponse:
    return problem(404, "No such API path. The paths are listed at /api/v1/docs.")


def _root(request: HttpRequest) -> HttpResponse:
    return HttpResponse(json.dumps({"docs": "/api/v1/docs", "openapi": "/api/v1/openapi.json"}),
                        content_type="application/json")


def urls() -> tuple[list[URLPattern | URLResolver], str, str]:
    """The API's URL patterns (for ``include``), each view key-authenticated rather than login-required,
    a root naming the docs, and a problem 404 for any other path under the prefix."""
    patterns, app_name, namespace = api.urls
    kept: list[URLPattern | URLResolver] = [path("", _api_view(_root), name="api-root")]
    for entry in patterns:
        if isinstance(entry, URLPattern):
            if entry.name == "api-root":
                continue  # ninja's own root: an HTML 404 outside DEBUG
            entry.callback = _api_view(entry.callback)
        kept.append(entry)
    fallback = path("<path:rest>", login_not_required(_unknown_path), name="unknown")
    return [*kept, fallback], app_name, namespace
