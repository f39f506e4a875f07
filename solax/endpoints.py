"""What each SolaX endpoint sends and how its answer is read, without any HTTP.

``ENDPOINTS`` holds the transport of every endpoint (base, path, method, where the parameters go), so a
change of the vendor's mind is one line. The ``*_params`` builders validate arguments and return the
parameters (token excepted) exactly as :meth:`solax.client.SolaxClient.call` takes them, so a caller
can store them in a ledger and send them later; ``RESULT_PARSERS`` reads a stored answer back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from solax.control import (
    MAX_SNS_PER_CALL,
    PileMode,
    clean_id,
    clean_ids,
    clean_sn,
    clean_sns,
    control_params_from_spec,
)
from solax.errors import ControlValidationError, RequestValidationError, ResponseParseError
from solax.models import BindResult, Envelope, Group, Member, Page, PileInfo
from solax.parsing import (
    parse_bind_result,
    parse_group_page,
    parse_id,
    parse_member_page,
    parse_pile_info,
    parse_query_result,
    parse_task_id,
)

Placement = Literal["query", "form", "json"]
# What a call does at SolaX, which decides how it is sent: "control" and "management" calls change the
# cloud (writes: sent at most once, never resent once they may have arrived), "poll" reads follow a
# command, "read" is everything else. The pipeline's priorities follow this order.
Kind = Literal["control", "management", "poll", "read"]
WRITE_KINDS = frozenset({"control", "management"})

MAX_PAGE_SIZE = 10_000  # not a vendor limit (none is documented): a guard against nonsense
MAX_NAME_LENGTH = 255


@dataclass(frozen=True)
class Endpoint:
    """One endpoint: ``base`` is "vpp" or "ev"; ``placement`` says where parameters go ("query",
    "form" or "json"); ``kind`` says what it does (see ``Kind``); ``write`` follows from it."""

    name: str
    base: Literal["vpp", "ev"]
    path: str
    method: Literal["GET", "POST"]
    placement: Placement
    doc_section: str
    kind: Kind = "read"

    @property
    def write(self) -> bool:
        """Whether the call changes the cloud: such a call is sent at most once."""
        return self.kind in WRITE_KINDS


def _vpp(name: str, path: str, section: str, kind: Kind = "read") -> Endpoint:
    # The VPP document says "Request mode: POST" but every example is a query string: POST + query.
    return Endpoint(name, "vpp", path, "POST", "query", section, kind)


ENDPOINTS: dict[str, Endpoint] = {
    endpoint.name: endpoint
    for endpoint in (
        _vpp("single_control", "/commandapi/singleControl", "VPP 1.1 Single Control", kind="control"),
        _vpp("batch_control", "/commandapi/batchTempControl", "VPP 1.2 Batch Control", kind="control"),
        _vpp("group_control", "/commandapi/groupControl", "VPP 1.3 Group Control", kind="control"),
        _vpp("group_add", "/vppgroup/add", "VPP 2.1 Group Add", kind="management"),
        _vpp("group_update", "/vppgroup/updateById", "VPP 2.2 Group Update", kind="management"),
        _vpp("group_delete", "/vppgroup/deleteById", "VPP 2.3 Group Delete", kind="management"),
        _vpp("group_delete_batch", "/vppgroup/deleteBatch", "VPP 2.4 Group Batch Deletion", kind="management"),
        _vpp("group_query", "/vppgroup/findAll", "VPP 2.5 Group Query"),
        _vpp("group_fuzzy_query", "/vppgroup/findLikeName", "VPP 2.6 Group Fuzzy Query"),
        _vpp("inverter_add", "/vppinverter/add", "VPP 3.1 Inverter Add", kind="management"),
        _vpp("inverter_delete", "/vppinverter/deleteById", "VPP 3.2 Inverter Delete", kind="management"),
        _vpp("inverter_delete_batch", "/vppinverter/deleteBatch", "VPP 3.3 Inverter Batch Deletion", kind="management"),
        _vpp("inverter_update", "/vppinverter/updateById", "VPP 3.4 Inverter Update", kind="management"),
        _vpp("inverter_query", "/vppinverter/findByGroupId", "VPP 3.5 Inverter Query"),
        _vpp("inverter_fuzzy_query", "/vppinverter/findByLike", "VPP 3.6 Inverter Fuzzy query"),
        _vpp("query_command", "/commandapi/queryCommand", "VPP 4.1 Command Query", kind="poll"),
        _vpp("query_result", "/commandapi/getQueryResult", "VPP 4.2 Result Query", kind="poll"),
        Endpoint("bind_devices", "vpp", "/api/regsn", "POST", "json", "VPP 5 Device Binding", kind="management"),
        Endpoint("pile_cmd", "ev", "/pileCmd", "POST", "json", "EV 3.1 work mode change", kind="control"),
        Endpoint("pile_info", "ev", "/getPileInfo", "GET", "query", "EV 3.2 read charger status"),
    )
}


def _merge(*parts: Callable[[], dict[str, Any]], error: type[RequestValidationError]) -> dict[str, Any]:
    """Return the union of the parts' parameters; raise ``error`` listing every part's problems."""
    params: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for part in parts:
        try:
            params.update(part())
        except RequestValidationError as exc:
            problems.update(exc.errors)
    if problems:
        raise error(problems)
    return params


def _name(value: object, field: str = "name") -> dict[str, Any]:
    text = value.strip() if isinstance(value, str) else ""
    if not text or len(text) > MAX_NAME_LENGTH:
        raise RequestValidationError({field: f"must be 1-{MAX_NAME_LENGTH} characters"})
    return {field: text}


def _in_range(value: object, top: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= top


def _page(current: object, size: object) -> dict[str, Any]:
    problems = {}
    if not _in_range(current, 10**9):
        problems["current"] = "must be a page number >= 1"
    if not _in_range(size, MAX_PAGE_SIZE):
        problems["size"] = f"must be an integer from 1 to {MAX_PAGE_SIZE}"
    if problems:
        raise RequestValidationError(problems)
    return {"current": str(current), "size": str(size)}


def _control(target: Callable[[], dict[str, Any]], spec: Mapping[str, object]) -> dict[str, Any]:
    return _merge(target, lambda: control_params_from_spec(spec), error=ControlValidationError)


def single_control_params(sn: str, spec: Mapping[str, object]) -> dict[str, Any]:
    """Return the parameters of VPP 1.1 Single Control; ``spec`` carries ``superType`` and its fields."""
    return _control(lambda: {"sn": clean_sn(sn, "sn")}, spec)


def batch_control_params(sns: Iterable[str] | str, spec: Mapping[str, object]) -> dict[str, Any]:
    """Return the parameters of VPP 1.2 Batch Control (``snList`` comma-separated, duplicates removed)."""
    return _control(lambda: {"snList": ",".join(clean_sns(sns, "snList"))}, spec)


def group_control_params(group_id: str, spec: Mapping[str, object]) -> dict[str, Any]:
    """Return the parameters of VPP 1.3 Group Control."""
    return _control(lambda: {"groupId": clean_id(group_id, "groupId")}, spec)


def group_add_params(name: str) -> dict[str, Any]:
    """Return the parameters of VPP 2.1 Group Add."""
    return _name(name)


def group_update_params(group_id: str, name: str) -> dict[str, Any]:
    """Return the parameters of VPP 2.2 Group Update (rename)."""
    return _merge(lambda: {"id": clean_id(group_id)}, lambda: _name(name), error=RequestValidationError)


def group_delete_params(group_id: str) -> dict[str, Any]:
    """Return the parameters of VPP 2.3 Group Delete."""
    return {"id": clean_id(group_id)}


def group_delete_batch_params(group_ids: Iterable[str] | str) -> dict[str, Any]:
    """Return the parameters of VPP 2.4 Group Batch Deletion (``ids``, comma-separated, as the example)."""
    return {"ids": ",".join(clean_ids(group_ids))}


def group_query_params(current: int, size: int) -> dict[str, Any]:
    """Return the parameters of VPP 2.5 Group Query (``current`` is 1-based)."""
    return _page(current, size)


def group_fuzzy_query_params(name: str) -> dict[str, Any]:
    """Return the parameters of VPP 2.6 Group Fuzzy Query."""
    return _name(name)


def inverter_add_params(group_id: str, inverter_sn: str) -> dict[str, Any]:
    """Return the parameters of VPP 3.1 Inverter Add."""
    return _merge(
        lambda: {"groupId": clean_id(group_id, "groupId")},
        lambda: {"inverterSn": clean_sn(inverter_sn, "inverterSn")},
        error=RequestValidationError,
    )


def inverter_delete_params(inverter_id: str) -> dict[str, Any]:
    """Return the parameters of VPP 3.2 Inverter Delete (``id`` is the membership id)."""
    return {"id": clean_id(inverter_id)}


def inverter_delete_batch_params(inverter_ids: Iterable[str] | str) -> dict[str, Any]:
    """Return the parameters of VPP 3.3 Inverter Batch Deletion (``ids``, comma-separated)."""
    return {"ids": ",".join(clean_ids(inverter_ids))}


def inverter_update_params(inverter_id: str, new_inverter_sn: str) -> dict[str, Any]:
    """Return the parameters of VPP 3.4 Inverter Update (replace the inverter of a membership)."""
    return _merge(
        lambda: {"id": clean_id(inverter_id)},
        lambda: {"newInverterSn": clean_sn(new_inverter_sn, "newInverterSn")},
        error=RequestValidationError,
    )


def inverter_query_params(group_id: str, current: int, size: int) -> dict[str, Any]:
    """Return the parameters of VPP 3.5 Inverter Query."""
    return _merge(
        lambda: {"groupId": clean_id(group_id, "groupId")},
        lambda: _page(current, size),
        error=RequestValidationError,
    )


def inverter_fuzzy_query_params(
    group_id: str, wifi_sn: str | None = None, inverter_sn: str | None = None
) -> dict[str, Any]:
    """Return the parameters of VPP 3.6 Inverter Fuzzy query; the SN filters are optional."""
    parts = [lambda: {"groupId": clean_id(group_id, "groupId")}]
    if wifi_sn is not None:
        parts.append(lambda: {"wifiSn": clean_sn(wifi_sn, "wifiSn")})
    if inverter_sn is not None:
        parts.append(lambda: {"inverterSn": clean_sn(inverter_sn, "inverterSn")})
    return _merge(*parts, error=RequestValidationError)


def query_command_params(command_id: str) -> dict[str, Any]:
    """Return the parameters of VPP 4.1 Command Query."""
    return {"commandId": clean_id(command_id, "commandId")}


def query_result_params(task_id: str) -> dict[str, Any]:
    """Return the parameters of VPP 4.2 Result Query."""
    return {"taskId": clean_id(task_id, "taskId")}


def bind_devices_params(sns: Iterable[str] | str) -> dict[str, Any]:
    """Return the JSON body of VPP 5 Device Binding: ``sns`` comma-separated, at most 100 (dongle SNs)."""
    return {"sns": ",".join(clean_sns(sns, "sns", limit=MAX_SNS_PER_CALL))}


def _callback_url(url: object) -> dict[str, Any]:
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or len(str(url)) > 2048:
        raise ControlValidationError({"callbackUrl": "must be an http(s) URL of at most 2048 characters"})
    return {"callbackUrl": url}


def _pile_mode(mode: object) -> dict[str, Any]:
    values = [member.value for member in PileMode]
    if isinstance(mode, bool) or not isinstance(mode, int) or mode not in values:
        raise ControlValidationError({"cmdValue": f"must be one of {values} (PileMode)"})
    return {"cmdValue": str(int(mode))}


def pile_cmd_params(sns: Iterable[str] | str, mode: PileMode | int, callback_url: str) -> dict[str, Any]:
    """Return the JSON body of EV 3.1 pileCmd: every value a string, ``sns`` a list of at most 100."""
    return _merge(
        lambda: {"rwType": "2", "cmdType": "1"},  # 2 = write, 1 = export control: the only documented pair
        lambda: _pile_mode(mode),
        lambda: {"sns": clean_sns(sns, "sns", limit=MAX_SNS_PER_CALL, error=ControlValidationError)},
        lambda: _callback_url(callback_url),
        error=ControlValidationError,
    )


def pile_info_params(pile_sn: str) -> dict[str, Any]:
    """Return the query of EV 3.2 getPileInfo."""
    return {"pileSn": clean_sn(pile_sn, "pileSn")}


# Readers: the typed value of an answer whose ``success`` is true (what the client methods return).


def read_command_id(envelope: Envelope) -> str:
    """Return the command id of a control answer (VPP 1.1-1.3)."""
    return parse_id(envelope.result, "command id")


def read_new_id(envelope: Envelope) -> str:
    """Return the id of a created group (2.1) or membership (3.1)."""
    return parse_id(envelope.result, "new id")


def read_nothing(envelope: Envelope) -> None:
    """Return None: updates and deletions answer ``result: null``."""
    return None


def read_group_page(envelope: Envelope) -> Page[Group]:
    """Return the groups of a group query (2.5, 2.6)."""
    return parse_group_page(envelope.result)


def read_member_page(envelope: Envelope) -> Page[Member]:
    """Return the members of an inverter query (3.5, 3.6)."""
    return parse_member_page(envelope.result)


def read_task_id(envelope: Envelope) -> str | None:
    """Return the task id of a Command Query (4.1), None while the cloud has none yet."""
    return parse_task_id(envelope.result)


def read_query_result(envelope: Envelope) -> dict[str, str | None]:
    """Return dongle SN -> answer (None = pending) of a Result Query (4.2)."""
    return parse_query_result(envelope.result)


def read_bind_result(envelope: Envelope) -> BindResult:
    """Return the four lists of a binding answer (5), which sit at the top level of the body."""
    return parse_bind_result(envelope.data)


def read_pile_task_id(envelope: Envelope) -> str:
    """Return the task id of a pileCmd answer (EV 3.1.7); raise ResponseParseError when missing."""
    task_id = parse_task_id(envelope.result)
    if task_id is None:
        raise ResponseParseError("the answer has no task id")
    return task_id


def read_pile_info(envelope: Envelope) -> PileInfo:
    """Return the charger state of a getPileInfo answer (EV 3.2.7)."""
    return parse_pile_info(envelope.result)


#: The reader of each endpoint, for answers stored by the call pipeline.
RESULT_PARSERS: dict[str, Callable[[Envelope], Any]] = {
    "single_control": read_command_id,
    "batch_control": read_command_id,
    "group_control": read_command_id,
    "group_add": read_new_id,
    "group_update": read_nothing,
    "group_delete": read_nothing,
    "group_delete_batch": read_nothing,
    "group_query": read_group_page,
    "group_fuzzy_query": read_group_page,
    "inverter_add": read_new_id,
    "inverter_delete": read_nothing,
    "inverter_delete_batch": read_nothing,
    "inverter_update": read_nothing,
    "inverter_query": read_member_page,
    "inverter_fuzzy_query": read_member_page,
    "query_command": read_task_id,
    "query_result": read_query_result,
    "bind_devices": read_bind_result,
    "pile_cmd": read_pile_task_id,
    "pile_info": read_pile_info,
}
