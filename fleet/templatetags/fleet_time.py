"""`{{ value|when }}`: a time in the zone the request activated (the person's chosen zone, else their
organization's first account's), always with the zone's abbreviation, in a <time> element.

A builtin (settings.TEMPLATES), so pages need no `{% load %}`. ``{{ value|when:"H:i" }}`` picks the
format (Django's date format letters; the abbreviation is always added).
"""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import dateformat, timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()

DEFAULT_FORMAT = "Y-m-d H:i:s"


@register.filter
def when(value: object, fmt: str = DEFAULT_FORMAT) -> SafeString | str:
    """Return ``value`` (an aware datetime) as ``<time datetime="…UTC…">2026-12-02 19:01:00 CET</time>``;
    "—" for an empty one."""
    if not isinstance(value, datetime):
        return "—" if value in (None, "") else str(value)
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    text = f"{dateformat.format(local, fmt)} {local.tzname() or ''}".strip()
    return format_html('<time datetime="{}">{}</time>', value.isoformat(), text)
