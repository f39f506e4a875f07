"""The API's request shapes (pydantic, through ninja): with ``fleet.shapes.responses`` they are the
OpenAPI document. The response shapes live in ``fleet.shapes`` because the webhooks send the same ones.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from ninja import Schema
from pydantic import ConfigDict, Field, StrictInt, StringConstraints

Sn = Annotated[str, StringConstraints(min_length=1, max_length=40)]
Name = Annotated[str, StringConstraints(max_length=200)]


class Strict(Schema):
    model_config = ConfigDict(extra="forbid")


# Requests --------------------------------------------------------------------------------------

class TargetIn(Strict):
    kind: Literal["inverter", "selection", "group", "groups", "saved", "fleet", "chargers"]
    group: uuid.UUID | None = Field(None, description="kind group: the group's code")
    groups: list[uuid.UUID] = Field(default_factory=list, max_length=1000, description="kind groups")
    sns: list[Sn] = Field(default_factory=list, max_length=50_000,
                          description="kind inverter (one), selection or chargers")
    selection: uuid.UUID | None = Field(None, description="kind saved: the saved selection's code")


class CommandIn(Strict):
    account: uuid.UUID | None = Field(None, description="the SolaX account; default: the organization's first")
    target: TargetIn
    action: dict[Annotated[str, StringConstraints(max_length=40)], StrictInt] = Field(
        max_length=40, description='e.g. {"superType": 2, "mode": 3, "manualMode": 1} or {"chargerMode": 1}')
    start_within_minutes: int | None = Field(None, ge=1, le=24 * 60,
                                             description="batches still unsent by then are cancelled")


class GroupIn(Strict):
    account: uuid.UUID | None = None
    name: Name


class GroupRenameIn(Strict):
    name: Name


class MemberIn(Strict):
    sn: Name


# Operators' decisions on a command (fleet.api.commands) --------------------------------------------

class ResolveIn(Strict):
    resolution: Literal["delivered", "not_delivered", "sent_again"] = Field(
        description="what happened to the devices whose delivery is unknown: delivered, not delivered, or "
                    "send the command again to them")
