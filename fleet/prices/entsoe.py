"""The ENTSO-E transparency platform's day-ahead prices (document type A44) for one local day.

Not SolaX: it does not share the vendor's budget, so it does not take the call pipeline; it is the
one module besides the dispatcher that imports requests (an ignore in the import contracts). The
security token goes in the query string, as the platform wants; it is never logged nor put in an error.
"""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import requests

from fleet.prices.parsing import ParsedPrices, PriceFileError, day_bounds, parse_a44

TIMEOUT = (5, 30)  # connect, read (seconds)


class FetchError(Exception):
    """The platform could not be reached or gave no usable prices; the message says why."""


def fetch_day_ahead(*, url: str, token: str, eic: str, day: date, tz: ZoneInfo,
                    session: requests.Session | None = None) -> tuple[ParsedPrices, bytes]:
    """Return the parsed prices of ``day`` (local in ``tz``) for bidding zone ``eic`` and the raw
    document. Raises FetchError."""
    if not token:
        raise FetchError("no ENTSO-E security token is configured")
    start, end = day_bounds(day, tz)
    params = {
        "securityToken": token, "documentType": "A44", "in_Domain": eic, "out_Domain": eic,
        "periodStart": f"{start:%Y%m%d%H%M}", "periodEnd": f"{end:%Y%m%d%H%M}",
    }
    try:
        response = (session or requests).get(url, params=params, timeout=TIMEOUT)
    except requests.RequestException as exc:
        raise FetchError(f"ENTSO-E could not be reached ({exc.__class__.__name__})")
    if response.status_code == 401:
        raise FetchError("ENTSO-E refused the security token (401)")
    body = response.content
    try:
        parsed = parse_a44(body, tz, expected_day=day)
    except PriceFileError as exc:
        raise FetchError(f"ENTSO-E answered {response.status_code}: {exc.reason}")
    return parsed, body
