"""The audit log for admins: every change in the organization, filtered and paged, and its CSV."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from typing import Any

from django.core.paginator import Paginator
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

FILTERS = ("actor", "action", "kind", "since", "until", "q")


def _parse_day(text: str) -> datetime | None:
    """Midnight of a YYYY-MM-DD day in the current zone, or None."""
    try:
        day = datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        return None
    return timezone.make_aware(datetime.combine(day, time.min))


def _filtered(request: HtmxHttpRequest, organization: Organization) -> tuple[QuerySet[AuditEntry], dict[str, str],
                                                                              list[str]]:
    """The organization's entries as the GET filters ask, the filters, and what was wrong with them
    (a wrong filter shows nothing rather than everything)."""
    entries = AuditEntry.objects.filter(organization=organization)
    filters = {name: request.GET.get(name, "").strip()[:200] for name in FILTERS}
    errors: list[str] = []
    if filters["actor"]:
        entries = entries.filter(actor_label=filters["actor"])
    if filters["action"]:
        if filters["action"] in audit.ACTIONS:
            entries = entries.filter(action=filters["action"])
        else:
            errors.append("Unknown action.")
    if filters["kind"]:
        if filters["kind"] in audit.KINDS:
            entries = entries.filter(object_kind=filters["kind"])
        else:
            errors.append("Unknown kind of object.")
    for name, op in (("since", "gte"), ("until", "lt")):
        if filters[name]:
            start = _parse_day(filters[name])
            if start is None:
                errors.append(f"'{name}' must be a date like 2026-01-31.")
                continue
            entries = entries.filter(**{f"at__{op}": start + (timedelta(days=1) if op == "lt" else timedelta())})
    if filters["q"]:
        q = filters["q"]
        entries = entries.filter(Q(object_name__icontains=q) | Q(object_code__iexact=q))
    if errors:
        entries = entries.none()
    return entries.order_by("-at", "-id"), filters, errors


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
    """The paged, filtered log (newest first), admins only."""
    membership = require_admin(request)
    organization = membership.organization
    entries, filters, errors = _filtered(request, organization)
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    actors = (AuditEntry.objects.filter(organization=organization).order_by("actor_label")
              .values_list("actor_label", flat=True).distinct())
    context = {
        "page": page, "rows": [(entry, _change_rows(entry.changes)) for entry in page.object_list],
        "filters": filters, "filter_errors": errors,
        "filter_query": urlencode([(k, v) for k, v in filters.items() if v]),
        "actors": list(actors), "actions": sorted(audit.ACTIONS.items()), "kinds": sorted(audit.KINDS.items()),
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
