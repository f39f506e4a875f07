"""What the list pages share in their GET filters: a value among known ones and a range of days, each
refused with a message that names it. The caller shows nothing when any filter was refused (a wrong
filter shows nothing rather than everything)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, time, timedelta
from typing import TypeVar

from django.db.models import Model, QuerySet
from django.utils import timezone

M = TypeVar("M", bound=Model)


def parse_day(text: str) -> datetime | None:
    """Midnight of a YYYY-MM-DD day in the current zone, or None."""
    try:
        day = datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        return None
    return timezone.make_aware(datetime.combine(day, time.min))


def by_choice(rows: QuerySet[M], value: str, allowed: Collection[str], field: str, refusal: str,
              errors: list[str]) -> QuerySet[M]:
    """``rows`` whose ``field`` is ``value`` when it is one of ``allowed``; otherwise ``refusal`` is added to
    ``errors``. An empty value filters nothing."""
    if not value:
        return rows
    if value not in allowed:
        errors.append(refusal)
        return rows
    return rows.filter(**{field: value})


def by_days(rows: QuerySet[M], since: str, until: str, field: str, errors: list[str]) -> QuerySet[M]:
    """``rows`` whose ``field`` falls from the start of day ``since`` to the end of day ``until`` (either may
    be empty), in the current zone."""
    for name, text, op in (("since", since, "gte"), ("until", until, "lt")):
        if not text:
            continue
        start = parse_day(text)
        if start is None:
            errors.append(f"'{name}' must be a date like 2026-01-31.")
            continue
        rows = rows.filter(**{f"{field}__{op}": start + (timedelta(days=1) if op == "lt" else timedelta())})
    return rows
