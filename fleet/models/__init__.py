"""Fleet models, one module per area; import them from here."""

from fleet.models.accounts import Invitation, InvitationState, Membership, Organization, Role, SolaxAccount
from fleet.models.alerts import (
    ACTIVE_ALERT_STATES,
    Alert,
    AlertKind,
    AlertState,
    Channel,
    ChannelEvent,
    ChannelKind,
    Delivery,
    DeliveryState,
    Severity,
)
from fleet.models.api import SCOPE_ROLE, ApiKey, ApiKeyScope, IdempotencyKey
from fleet.models.audit import AuditEntry
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
    RolloutStage,
    SafetyEnvelope,
    TargetKind,
)
from fleet.models.mirror import BindingRequest, Charger, Group, Inverter, SavedSelection, SyncRun, UngroupedDevice
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
    "ACTIVE_ALERT_STATES", "Alert", "AlertKind", "AlertState", "Channel", "ChannelEvent", "ChannelKind", "Delivery",
    "DeliveryState", "Severity", "SCOPE_ROLE", "ApiKey", "ApiKeyScope", "IdempotencyKey",
    "ApiCall", "AuditEntry", "BindingRequest", "CallAttempt", "CallState", "CallbackReceipt", "Charger", "Command",
    "CommandBatch", "CommandKind", "CommandState", "DayPlan", "DeviceResult", "DeviceState", "Edge", "Group",
    "Inverter", "Invitation", "InvitationState", "Membership", "Occurrence", "OccurrenceState", "OnceKey",
    "Organization", "PlanEdge", "PlanEdgeState", "PlanForm", "PlanState", "PriceInterval", "PriceRule",
    "PriceSeries", "PriceSource", "PriceZone", "Priority", "Resolution", "Role", "RolloutStage", "SafetyEnvelope",
    "SavedSelection", "Schedule", "SolaxAccount", "SyncRun", "TargetKind", "UngroupedDevice",
]
