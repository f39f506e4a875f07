"""Driving HTMX forms in a real browser the way a person does: choose, then wait for the swap."""

from __future__ import annotations

from typing import Any

IDLE = "() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')"


def swap(page: Any, name: str, value: str, *, path: str = "/commands/new/") -> None:
    """Choose ``value`` in the select ``name`` and wait for HTMX to swap the fields it governs.

    htmx wires the new fields once the swap has settled; a choice made on the old fields in that
    instant is lost with them. IDLE is a function, not an expression string: Playwright evaluates
    strings, which the page's CSP forbids."""
    with page.expect_response(lambda r: path in r.url and r.request.method == "GET"):
        page.select_option(f"select[name={name}]", value)
    page.wait_for_function(IDLE)
    page.wait_for_timeout(50)
