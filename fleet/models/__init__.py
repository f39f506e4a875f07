"""Fleet models, one module per area; import them from here."""

from fleet.models.accounts import Membership, Organization, Role, SolaxAccount
from fleet.models.calls import ApiCall, CallAttempt, CallState, Priority

__all__ = [
    "ApiCall", "CallAttempt", "CallState", "Membership", "Organization", "Priority", "Role", "SolaxAccount",
]
