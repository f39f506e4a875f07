from __future__ import annotations

from django.http import HttpRequest

from fleet.accounts.access import current_membership
from fleet.models import Membership


def organization(request: HttpRequest) -> dict[str, object]:
    """Expose the current membership (or None) to every template, without raising."""
    if not request.user.is_authenticated:
        return {"membership": None}
    try:
        membership: Membership | None = current_membership(request)
    except Exception:  # noqa: BLE001 - a page without an organization still renders its layout
        membership = None
    # the nav's badge: counted in the membership's own query (fleet.accounts.access.current_membership)
    return {"membership": membership, "open_alerts": getattr(membership, "open_alerts", None) or 0}
