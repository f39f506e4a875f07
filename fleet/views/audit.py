"""The audit log for admins: every change in the organization, filtered and paged, and its CSV."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from fleet.accounts import audit
from fleet.accounts.access import require_admin
from fleet.models import AuditEntry, Organization
from fleet.views.base import PAGE_SIZE, HtmxHttpRequest, csv_response, error_status
from fleet.views.filters import by_choice, by_days

FILTERS = ("actor", "action", "kind", "since", "until", "q")


def _filtered(request: HtmxHttpRequest, organization: Organization) -> tuple[QuerySet[AuditEntry], dict[str, str],
                                                                              list[str]]:
    """The organization's entries as the GET filters ask, the filters, and what was wrong with them
    (a wrong filter shows nothing rather than everything)."""
    entries = AuditEntry.objects.filter(organization=organization)
    filters = {name: request.GET.get(name, "").strip()[:200] for name in FILTERS}
    errors: list[str] = []
    if filters["actor"]:
        entries = entries.filter(actor_label=filters["actor"])
    entries = by_choice(entries, filters["action"], audit.ACTIONS, "action", "Unknown action.", errors)
    entries = by_choice(entries, filters["kind"], audit.KINDS, "object_kind", "Unknown kind of object.", errors)
    entries = by_days(entries, filters["since"], filters["until"], "at", errors)
    if filters["q"]:
        q = filters["q"]
        entries = entries.filter(Q(object_name__icontains=q) | Q(object_code__iexact=q))
    if errors:
        entries = entries.none()
    return entries.order_by("-at", "-id"), filters, errors


def cursor_of(entry: AuditEntry) -> str:
    """Where a page starts or ends: the entry's time and id (the log's order)."""
    return f"{entry.at.isoformat()},{entry.pk}"


def _parse_cursor(text: str) -> tuple[datetime, int] | None:
    at, _, pk = text.rpartition(",")
    try:
        moment, number = datetime.fromisoformat(at), int(pk)
    except ValueError:
        return None
    return (moment, number) if moment.tzinfo is not None else None


def _keyset_page(entries: QuerySet[AuditEntry], request: HtmxHttpRequest,
                 errors: list[str]) -> tuple[list[AuditEntry], str, str]:
    """One page of the log, newest first, by keyset: ``before`` (older than that entry) or ``after``
    (newer than it). An ever-growing log is never counted: the page costs one query at any size.
    Returns the rows and the cursors of the newer and older pages ("" when there is none)."""
    before, after = request.GET.get("before", ""), request.GET.get("after", "")
    cursor = _parse_cursor(before or after) if before or after else None
    if (before or after) and cursor is None:
        errors.append("That page of the log does not exist: start again from the newest.")
        return [], "", ""
    if cursor is None:
        rows = list(entries[:PAGE_SIZE + 1])
        return rows[:PAGE_SIZE], "", cursor_of(rows[PAGE_SIZE - 1]) if len(rows) > PAGE_SIZE else ""
    at, pk = cursor
    if before:
        rows = list(entries.filter(Q(at__lt=at) | Q(at=at, pk__lt=pk))[:PAGE_SIZE + 1])
        older = cursor_of(rows[PAGE_SIZE - 1]) if len(rows) > PAGE_SIZE else ""
        rows = rows[:PAGE_SIZE]
        return rows, cursor_of(rows[0]) if rows else "", older
    rows = list(entries.filter(Q(at__gt=at) | Q(at=at, pk__gt=pk)).order_by("at", "id")[:PAGE_SIZE + 1])
    newer = cursor_of(rows[PAGE_SIZE - 1]) if len(rows) > PAGE_SIZE else ""
    rows = rows[:PAGE_SIZE][::-1]
    return rows, newer, cursor_of(rows[-1]) if rows else ""


def _change_rows(changes: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(field, before, after) as the page shows them; a secret's pair says only that it changed."""
    rows = []
    for field, pair in changes.items():
        if pair == audit.CHANGED:
            rows.append((field, "(secret)", "changed"))
        elif isinstance(pair, list) and len(pair) == 2:
            rows.append((field, _shown(pair[0]), _shown(pair[1])))
        else:
            rows.append((field, "", _shown(pair)))
    return rows


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


@require_GET
def audit_log(request: HtmxHttpRequest) -> HttpResponse:
    """The filtered log, newest first, a page at a time (keyset), admins only."""
    membership = require_admin(request)
    organization = membership.organization
    entries, filters, errors = _filtered(request, organization)
    rows, newer, older = _keyset_page(entries, request, errors)
    # The actor filter is typed (any label: a removed person, an API key), suggested from the members:
    # a DISTINCT over the whole log would cost more than the page itself.
    actors = [*organization.memberships.order_by("user__username").values_list("user__username", flat=True),
              audit.SYSTEM]
    context = {
        "rows": [(entry, _change_rows(entry.changes)) for entry in rows], "newer": newer, "older": older,
        "paged": bool(request.GET.get("before") or request.GET.get("after")),
        "filters": filters, "filter_errors": errors,
        "filter_query": urlencode([(k, v) for k, v in filters.items() if v]),
        "actors": actors, "actions": sorted(audit.ACTIONS.items()), "kinds": sorted(audit.KINDS.items()),
        "zone": timezone.get_current_timezone_name(),
    }
    status = error_status(request) if errors else 200
    if request.htmx and request.htmx.target == "audit-log":
        return render(request, "fleet/audit.html#log", context, status=status)
    return render(request, "fleet/audit.html", context, status=status)


@require_GET
def audit_export(request: HtmxHttpRequest) -> StreamingHttpResponse | HttpResponse:
    """The filtered log as CSV (every page, streamed), times in the current zone with its abbreviation."""
    membership = require_admin(request)
    entries, _, errors = _filtered(request, membership.organization)
    if errors:
        return HttpResponse("; ".join(errors), status=400, content_type="text/plain; charset=utf-8")
    zone = timezone.get_current_timezone()
    rows = ((timezone.localtime(at, zone).strftime("%Y-%m-%d %H:%M:%S %Z"), actor, address or "", action, kind, code,
             name, json.dumps(changes, ensure_ascii=False, sort_keys=True))
            for at, actor, address, action, kind, code, name, changes in entries.values_list(
                "at", "actor_label", "address", "action", "object_kind", "object_code", "object_name", "changes",
            ).iterator(chunk_size=2000))
    return csv_response("audit-log.csv", ["when", "who", "from", "action", "object kind", "object code", "object",
                                          "changes"], rows)
