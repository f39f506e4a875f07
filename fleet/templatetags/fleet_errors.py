"""`{{ call.error|call_error }}`: a failure in an operator's words, the raw text folded beneath.

A builtin (settings.TEMPLATES), so pages need no `{% load %}`.
"""

from __future__ import annotations

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from solax.errors import in_operator_words

register = template.Library()


@register.filter
def call_error(text: object, fallback: str = "") -> SafeString | str:
    """Return the HTML of an error: the operator's words in `.error`, the raw text in a <details>.
    An empty error shows `fallback` (e.g. "no answer") the same way."""
    raw = str(text or "").strip() or fallback
    if not raw:
        return ""
    words = in_operator_words(raw)
    if words is None:
        return format_html('<span class="error">{}</span>', raw)
    return format_html(
        '<span class="error">{}</span> <details class="raw-error"><summary>Details</summary><code>{}</code></details>',
        words, raw,
    )
