"""What every view module shares: the typed request, paging, the status of a form error and CSV."""

from __future__ import annotations

import csv
from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails
    user: AbstractBaseUser | AnonymousUser  # type: ignore[assignment]


PAGE_SIZE = 50


def confirmation(*, label: str, title: str, text: str, action: str, button: str, cancel_url: str,
                 items: Iterable[str] = (), code_items: bool = False, fields: Iterable[tuple[str, object]] = (),
                 hx_target: str = "") -> dict[str, object]:
    """The context of templates/fleet/_confirm.html: one confirmation block for every destructive
    action (``hx_target``: swapped in place by HTMX; else a plain POST)."""
    return {"label": label, "title": title, "text": text, "action": action, "button": button,
            "cancel_url": cancel_url, "items": list(items), "code_items": code_items, "fields": list(fields),
            "hx_target": hx_target}


def to_list(response: HttpResponse, target: str) -> HttpResponse:
    """An inline form (rename, replace) swaps its own row's form on a refusal; after a write, the whole
    list comes back: tell HTMX to put it in ``target`` instead (a redirect is left alone)."""
    if response.status_code == 200:
        response["HX-Retarget"] = target
        response["HX-Reswap"] = "innerHTML"
    return response


def paginate(queryset: QuerySet, request: HtmxHttpRequest) -> Page:  # type: ignore[type-arg]
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


def error_status(request: HtmxHttpRequest, status: int = 400) -> int:
    """A form error answers 400, except to HTMX, which swaps only 2xx answers into the page."""
    return 200 if request.htmx and status == 400 else status


class _Echo:
    def write(self, value: str) -> str:
        return value


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> object:
    """A cell a spreadsheet will not run: text starting like a formula gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_response(filename: str, header: list[str], rows: object) -> StreamingHttpResponse:
    """Stream a CSV (rows are fetched in chunks: a 50,000-member fleet stays small in memory)."""
    writer = csv.writer(_Echo())

    def lines():  # type: ignore[no-untyped-def]
        yield writer.writerow(header)
        for row in rows:  # type: ignore[attr-defined]
            yield writer.writerow([_cell(value) for value in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    # group names become file names: quoted and encoded by Django, never pasted into the header
    response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=filename) or ""
    return response
