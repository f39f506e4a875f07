"""Queueing a command's batches: which endpoint a batch goes to and its vendor parameters, built from
the stored command alone (so that creation, approval, a staged rollout's continuation and a batch
split after a "list too long" refusal all queue the same call)."""

from __future__ import annotations

from typing import Any

from fleet.models import Command, CommandBatch, CommandKind, TargetKind
from fleet.pipeline import queue
from solax import endpoints


def endpoint_of(kind: str, target_kind: str, group: Any, sns: list[str]) -> str:
    if kind == CommandKind.CHARGER_MODE:
        return "pile_cmd"
    if group is not None:
        return "group_control"
    return "single_control" if target_kind == TargetKind.INVERTER and len(sns) == 1 else "batch_control"


def send_params(command: Command, group: Any, sns: list[str]) -> dict[str, Any]:
    """The vendor parameters of one control call of ``command`` (without the token or callback URL)."""
    endpoint = endpoint_of(command.kind, command.target_kind, group, sns)
    action = dict(command.action)
    if endpoint == "pile_cmd":
        # Built with the real callback URL so that it is validated; the pipeline adds it again at send
        # time, as it is a secret and must not sit in the ledger.
        params = endpoints.pile_cmd_params(sns, action["chargerMode"], command.account.callback_url)
        params.pop("callbackUrl")
        return params
    if endpoint == "group_control":
        return endpoints.group_control_params(group.remote_id, action)
    if endpoint == "single_control":
        return endpoints.single_control_params(sns[0], action)
    return endpoints.batch_control_params(sns, action)


def enqueue_batch(command: Command, batch: CommandBatch) -> None:
    """Queue the batch's control call (its handler is "commands.sent") and remember it on the batch."""
    endpoint = endpoint_of(command.kind, command.target_kind, batch.group, list(batch.sns))
    batch.call = queue.enqueue(command.account, endpoint, send_params(command, batch.group, list(batch.sns)),
                               purpose=command.label, handler="commands.sent", context={"batch": batch.pk},
                               origin_kind="command", origin_code=command.code)
    batch.save(update_fields=["call"])
