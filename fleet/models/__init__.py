"""Fleet models, one module per area; import them from here."""

from fleet.models.accounts import Invitation, InvitationState, Membership, Organization, Role, SolaxAccount
from fleet.models.api import SCOPE_ROLE, ApiKey, ApiKeyScope, IdempotencyKey
from fleet.models.calls import ApiCall, CallAttempt, CallState, Priority
from fleet.models.commands import (
    CallbackReceipt,
    Command,
    CommandBatch,
    CommandKind,
    CommandState,
    DeviceResult,
    DeviceState,
    Resolution,
    SafetyEnvelope,
    TargetKind,
)
from fleet.models.mirror import BindingRequest, Charger, Group, Inverter, SavedSelection, SyncRun
from fleet.models.once import OnceKey
from fleet.models.prices import (
    DayPlan,
    PlanEdge,
    PlanEdgeState,
    PlanForm,
    PlanState,
    PriceInterval,
    PriceRule,
    PriceSeries,
    PriceSource,
    PriceZone,
)
from fleet.models.schedules import Edge, Occurrence, OccurrenceState, Schedule

__all__ = [
    "SCOPE_ROLE", "ApiKey", "ApiKeyScope", "IdempotencyKey",
    "ApiCall", "BindingRequest", "CallAttempt", "CallState", "CallbackReceipt", "Charger", "Command",
    "CommandBatch", "CommandKind", "CommandState", "DayPlan", "DeviceResult", "DeviceState", "Edge", "Group",
    "Inverter", "Invitation", "InvitationState", "Membership", "Occurrence", "OccurrenceState", "OnceKey",
    "Organization", "PlanEdge", "PlanEdgeState", "PlanForm", "PlanState", "PriceInterval", "PriceRule",
    "PriceSeries", "PriceSource", "PriceZone", "Priority", "Resolution", "Role", "SafetyEnvelope",
    "SavedSelection", "Schedule", "SolaxAccount", "SyncRun", "TargetKind",
]
