"""One-time keys in tests: read the key a page issued, as a browser would submit it."""

from __future__ import annotations

import re
from typing import Any

KEY = re.compile(r'name="once" value="([^"]+)"')


def key_in(response: Any) -> str:
    """Return the one-time key of the (first) protected form in a response."""
    match = KEY.search(response.content.decode())
    assert match, "the page has no one-time key"
    return match.group(1)


def key_from(client: Any, url: str) -> str:
    """GET ``url`` and return the one-time key of its protected form."""
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return key_in(response)
