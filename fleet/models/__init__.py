"""Fleet models, one module per area; import them from here."""

from fleet.models.accounts import Membership, Organization, Role, SolaxAccount
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
    TargetKind,
)
from fleet.models.mirror import BindingRequest, Charger, Group, Inverter, SyncRun
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
    "ApiCall", "BindingRequest", "CallAttempt", "CallState", "CallbackReceipt", "Charger", "Command",
    "CommandBatch", "CommandKind", "CommandState", "DeviceResult", "DeviceState", "Edge", "Group", "Inverter",
    "Membership", "Occurrence", "OccurrenceState", "Organization", "Priority", "Resolution", "Role", "Schedule",
    "SolaxAccount", "SyncRun", "TargetKind",
    "DayPlan", "PlanEdge", "PlanEdgeState", "PlanForm", "PlanState", "PriceInterval", "PriceRule", "PriceSeries",
    "PriceSource", "PriceZone",
]
