"""The resources' shapes (pydantic, through ninja) as the API answers them and the webhooks send them:
one definition, so a webhook's ``command`` or ``alert`` is byte for byte the API's GET body.

Times are ISO 8601 with their offset (``2026-12-02T03:04:05.123456+00:00``). Render with
``render`` (``model_dump(mode="json")``): UUIDs, dates and times come out as ninja writes them.
"""

from __future__ import annotations

import uuid
from datetime import date as Day
from datetime import datetime
from typing import Annotated, Any

from ninja import Schema
from pydantic import Field, PlainSerializer, WithJsonSchema


def _iso(value: datetime) -> str:
    return value.isoformat()


Time = Annotated[datetime, PlainSerializer(_iso, return_type=str),
                 WithJsonSchema({"type": "string", "format": "date-time"})]


class Page(Schema):
    next_cursor: str | None
    next: str | None = Field(description="the next page's URL, or null on the last page")


class BudgetOut(Schema):
    minute_used: int
    minute_limit: int
    minute_free: int
    day_used: int
    day_limit: int
    day_free: int
    queued: int
    drain_seconds: int | None
    paused_until: Time | None
    pause_reason: str


class AccountOut(Schema):
    code: uuid.UUID
    name: str
    timezone: str
    token_readable: bool
    max_sns_per_call: int
    budget: BudgetOut


class AccountPage(Page):
    items: list[AccountOut]


class CallOut(Schema):
    code: uuid.UUID
    account: uuid.UUID
    endpoint: str
    purpose: str
    state: str
    error: str
    created: Time
    sent_at: Time | None
    finished_at: Time | None
    objects: list[str] = Field(description="codes of the local objects it changes, once known")
    url: str


class GroupOut(Schema):
    code: uuid.UUID
    account: uuid.UUID
    name: str
    remote_id: str
    device_count: int
    removed: bool
    synced_at: Time | None
    remote_updated: Time | None


class GroupDetailOut(GroupOut):
    last_change: CallOut | None


class GroupPage(Page):
    items: list[GroupOut]


class InverterOut(Schema):
    code: uuid.UUID
    account: uuid.UUID
    group: uuid.UUID
    group_name: str
    inverter_sn: str
    dongle_sn: str
    rated_power_kw: float | None
    in_group: bool


class InverterPage(Page):
    items: list[InverterOut]


class ChargerOut(Schema):
    code: uuid.UUID
    account: uuid.UUID
    sn: str
    label: str
    status: int | None
    mode: int | None
    power: float | None
    energy: float | None
    read_at: Time | None
    refused: str


class ChargerPage(Page):
    items: list[ChargerOut]


class SelectionOut(Schema):
    code: uuid.UUID
    account: uuid.UUID
    name: str
    size: int
    created: Time
    updated: Time


class SelectionDetailOut(SelectionOut):
    sns: list[str]


class SelectionPage(Page):
    items: list[SelectionOut]


class BatchOut(Schema):
    group: uuid.UUID | None
    sns: int


class PlanOut(Schema):
    label: str
    endpoint: str
    devices: int
    sends: int
    polls: int
    calls: int
    group_calls: int
    max_sns_per_call: int
    queued_ahead: int
    goes_out_at: Time
    day_free: int
    day_limit: int
    day_share_percent: float
    fits_today: bool
    needs_approval: bool
    batches: list[BatchOut]


class DevicesOut(Schema):
    total: int
    answered: int
    succeeded: int
    failed: int


class CommandOut(Schema):
    code: uuid.UUID
    account: uuid.UUID
    label: str
    kind: str
    target_kind: str
    group: uuid.UUID | None
    action: dict[str, Any]
    state: str
    source: str
    created: Time
    created_by: str | None = Field(description="the person, for commands from the pages")
    api_key: str | None = Field(description="the API key's name, for commands from the API")
    created_from: str | None
    start_by: Time | None
    expires_at: Time | None
    finished_at: Time | None
    resolution: str
    devices: DevicesOut
    url: str
    results: str


class CommandDetailOut(CommandOut):
    calls_total: int
    calls_sent: int
    unmatched: dict[str, str] = Field(description="answers for SNs the mirror does not know")


class CommandPage(Page):
    items: list[CommandOut]


class ResultOut(Schema):
    sn: str
    dongle_sn: str
    state: str
    answer: str
    answered_at: Time | None


class ResultPage(Page):
    items: list[ResultOut]


class ScheduleOut(Schema):
    code: uuid.UUID
    account: uuid.UUID
    name: str
    target_kind: str
    group: uuid.UUID | None
    selection: uuid.UUID | None
    sns: list[str]
    start_action: dict[str, Any]
    end_action: dict[str, Any]
    start_time: str
    end_time: str
    date: Day | None
    weekdays: list[int]
    timezone: str
    enabled: bool
    valid_from: Day | None
    valid_until: Day | None
    calls_per_edge: int
    next_edge_at: Time | None


class SchedulePage(Page):
    items: list[ScheduleOut]


class PricePlanOut(Schema):
    code: uuid.UUID
    account: uuid.UUID
    zone: str
    rule: uuid.UUID
    target_kind: str
    group: uuid.UUID | None
    group_name: str | None
    day: Day
    form: str
    state: str
    calls: int
    avg_charge: str | None
    avg_discharge: str | None
    periods: list[dict[str, Any]]
    edges: list[dict[str, Any]]
    notes: list[Any]
    created: Time
    accepted_at: Time | None


class PricePlanPage(Page):
    items: list[PricePlanOut]


class ProblemOut(Schema):
    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]] | None = None


class AlertOut(Schema):
    code: uuid.UUID
    kind: str
    severity: str = Field(description="info, warning or critical")
    subject: str = Field(description="what the episode is about: a command's, account's, schedule's code ...")
    title: str
    detail: str
    state: str = Field(description="open, acknowledged or resolved")
    account: uuid.UUID | None
    raised_at: Time
    acknowledged_at: Time | None
    acknowledged_by: str | None
    resolved_at: Time | None
    resolution: str
    link: str


class AlertPage(Page):
    items: list[AlertOut]


def render(schema: type[Schema], data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (a serializer's dict) through ``schema`` as JSON-ready values, as ninja renders an
    answer: the webhooks' bodies use it so that their resources equal the API's."""
    return schema.model_validate(data).model_dump(mode="json")


class ResolveOut(CommandOut):
    sent_again: CommandOut | None = Field(description="resolution sent_again: the new command to those devices")
