"""The 20 endpoints of the contract: path, handler and answer shape (ids as the documents print them)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import validation as v
from .callbacks import Delivery
from .config import SimConfig
from .model import Group
from .replies import CODE_NO_AUTH, MSG_NO_AUTH, ApiFailure, Reply, ok, rule_broken
from .state import Tenant

VPP_PREFIX = "/proxy"
EV_PREFIX = "/proxyApp/proxy/api"

Params = dict[str, Any]


@dataclass
class Context:
    config: SimConfig
    quirk: Callable[[str, float], bool]  # quirk(name, rate): does this call show that quirk?
    schedule: Callable[[str, list[Delivery]], None]
    n: int = 0  # this is the n-th call of the endpoint by this token

    def id_out(self, value: str, doc_number: bool) -> int | str:
        """An id as this cloud prints it: `doc_number` says whether the documents print it as a number."""
        style = self.config.id_style
        return int(value) if (style == "numbers" or (style == "doc" and doc_number)) else str(value)

    def numbers(self, doc_number: bool) -> bool:
        style = self.config.id_style
        return style == "numbers" or (style == "doc" and doc_number)

    def paged(self, reply: Reply) -> Reply:
        """A paged answer, slowed by `page_delay` (the state was read before the wait)."""
        reply.delay = max(reply.delay, self.config.page_delay)
        return reply

    def count_changes(self) -> bool:
        """Whether this paged query sees its list grow first (`count_change_every`)."""
        every = self.config.count_change_every
        return every > 0 and self.n % every == 0

    @property
    def success_key(self) -> str:
        """VPP doc 4 describes `isSuccess`, its examples answer `success`."""
        return "isSuccess" if self.quirk("isSuccess", self.config.is_success_rate) else "success"


Handler = Callable[[Tenant, Params, Context], Reply]


@dataclass(frozen=True)
class Endpoint:
    name: str
    base: str  # vpp | ev
    path: str
    handler: Handler
    control: bool = False  # counted in the payload ledger of /_sim/counters

    @property
    def full_path(self) -> str:
        return (VPP_PREFIX if self.base == "vpp" else EV_PREFIX) + self.path


def _group_row(group: Group, ids_as_numbers: bool) -> dict[str, Any]:
    return {
        "id": int(group.id) if ids_as_numbers else group.id,
        "name": group.name,
        "num": len(group.members),
        "createTime": group.create_time,
        "updateTime": group.update_time,
    }


# -- control (VPP doc 1) ----------------------------------------------------------------------------------
def single_control(t: Tenant, p: Params, ctx: Context) -> Reply:
    sn = v.text(p, "sn")
    params = v.control(p)
    return Reply.json(ok(ctx.id_out(t.commands.control([t.bound_inverter(sn)], params), True)))


def batch_control(t: Tenant, p: Params, ctx: Context) -> Reply:
    # Refused as a whole past the batch cap (code 1002, "The number of snList cannot exceed N"):
    # checked before anything else, nothing executes.
    sns = v.sn_list(p.get("snList"), "snList", ctx.config.batch_cap or ctx.config.max_sns)
    params = v.control(p)
    targets = [t.bound_inverter(sn) for sn in dict.fromkeys(sns)]
    return Reply.json(ok(ctx.id_out(t.commands.control(targets, params), True)))


def group_control(t: Tenant, p: Params, ctx: Context) -> Reply:
    group_id = v.one_id(p, "groupId")
    params = v.control(p)
    group = t.group(group_id)
    if not group.members:
        raise rule_broken("There is no inverter in the group")
    targets = [t.inverters[member.inverter_sn] for member in group.members.values()]
    return Reply.json(ok(ctx.id_out(t.commands.control(targets, params), True)))


# -- groups (VPP doc 2) -----------------------------------------------------------------------------------
def group_add(t: Tenant, p: Params, ctx: Context) -> Reply:
    return Reply.json(ok(ctx.id_out(t.group_add(v.text(p, "name")), True)))


def group_update(t: Tenant, p: Params, ctx: Context) -> Reply:
    t.group_update(v.one_id(p, "id"), v.text(p, "name"))
    return Reply.json(ok(None))


def group_delete(t: Tenant, p: Params, ctx: Context) -> Reply:
    t.group_delete([v.one_id(p, "id")])
    return Reply.json(ok(None))


def group_delete_batch(t: Tenant, p: Params, ctx: Context) -> Reply:
    t.group_delete(v.id_list(p))
    return Reply.json(ok(None))


def group_query(t: Tenant, p: Params, ctx: Context) -> Reply:
    current, size = v.page(p, ctx.config.max_page_size)
    if ctx.count_changes():  # a group created by someone else while we page
        t.group_add(f"Added meanwhile {t.new_id()}")
    total, groups = t.group_page(current, size)
    result = {"num": total, "list": [_group_row(g, ctx.numbers(True)) for g in groups]}
    if ctx.quirk("findAllDocShape", ctx.config.findall_doc_shape_rate):
        # VPP doc 2.5's example: `success` inside `result`, and the last closing brace missing.
        text = json.dumps({"exception": None, "result": {**result, "success": True}}, separators=(",", ":"))
        return ctx.paged(Reply(body=text[:-1].encode()))
    return ctx.paged(Reply.json(ok(result), unquote_times=ctx.config.unquoted_times))


def group_fuzzy_query(t: Tenant, p: Params, ctx: Context) -> Reply:
    groups = t.group_like(v.text(p, "name"))
    result = {"num": len(groups), "list": [_group_row(g, ctx.numbers(False)) for g in groups]}
    return Reply.json(ok(result), unquote_times=ctx.config.unquoted_times)


def _touch(t: Tenant, ctx: Context, group_id: str | None) -> None:
    """A cloud that sets the group's updateTime on member writes (`member_write_touches_group`)."""
    group = t.groups.get(group_id) if group_id else None
    if ctx.config.member_write_touches_group and group is not None:
        group.update_time = t.now_text()


def _free_inverter_sn(t: Tenant) -> str | None:
    for inverter in t.inverters.values():
        if inverter.bound and inverter.member_id is None:
            return inverter.sn
    return None


# -- memberships (VPP doc 3) ------------------------------------------------------------------------------
def inverter_add(t: Tenant, p: Params, ctx: Context) -> Reply:
    group_id = v.one_id(p, "groupId")
    member_id = t.member_add(group_id, v.text(p, "inverterSn"))
    _touch(t, ctx, group_id)
    return Reply.json(ok(ctx.id_out(member_id, False)))


def _member_groups(t: Tenant, ids: list[str]) -> list[str]:
    return [t.members[i].group_id for i in ids if i in t.members]


def inverter_delete(t: Tenant, p: Params, ctx: Context) -> Reply:
    ids = [v.one_id(p, "id")]
    groups = _member_groups(t, ids)
    t.member_delete(ids)
    for group_id in groups:
        _touch(t, ctx, group_id)
    return Reply.json(ok(None))


def inverter_delete_batch(t: Tenant, p: Params, ctx: Context) -> Reply:
    ids = list(v.id_list(p))
    groups = _member_groups(t, ids)
    t.member_delete(ids)
    for group_id in dict.fromkeys(groups):
        _touch(t, ctx, group_id)
    return Reply.json(ok(None))


def inverter_update(t: Tenant, p: Params, ctx: Context) -> Reply:
    member_id = v.one_id(p, "id")
    t.member_update(member_id, v.text(p, "newInverterSn"))
    _touch(t, ctx, t.members[member_id].group_id)
    return Reply.json(ok(None, exception="update succeeded"))


def _member_reply(t: Tenant, ctx: Context, result: dict[str, Any]) -> Reply:
    return Reply.json(ok(result), unquote_create_time=ctx.config.unquoted_create_time,
                      unquote_times=ctx.config.unquoted_times)


def inverter_query(t: Tenant, p: Params, ctx: Context) -> Reply:
    group_id = v.one_id(p, "groupId")
    current, size = v.page(p, ctx.config.max_page_size)
    if ctx.count_changes() and group_id in t.groups:  # a member added by someone else while we page
        sn = _free_inverter_sn(t)
        if sn is not None:
            t.member_add(group_id, sn)
    total, members = t.member_page(group_id, current, size)
    result = {"num": total, "list": [t.member_row(m, ctx.numbers(True)) for m in members]}
    return ctx.paged(_member_reply(t, ctx, result))


def inverter_fuzzy_query(t: Tenant, p: Params, ctx: Context) -> Reply:
    group_id = v.one_id(p, "groupId")
    wifi_sn, inverter_sn = v.text(p, "wifiSn", False), v.text(p, "inverterSn", False)
    found = t.member_like(group_id, wifi_sn, inverter_sn)
    rows = [t.member_row(m, ctx.numbers(True)) for m in found]
    if ctx.config.fuzzy_lists_ungrouped:
        rows += [t.ungrouped_row(i, group_id, ctx.numbers(True)) for i in t.ungrouped_like(wifi_sn, inverter_sn)]
    result = {"num": len(rows), "list": rows}
    return _member_reply(t, ctx, result)


# -- queries (VPP doc 4) ----------------------------------------------------------------------------------
def query_command(t: Tenant, p: Params, ctx: Context) -> Reply:
    task_id = t.commands.query_command(v.one_id(p, "commandId"))
    return Reply.json(ok({"taskId": task_id}, success_key=ctx.success_key))


def query_result(t: Tenant, p: Params, ctx: Context) -> Reply:
    answers = t.commands.query_result(v.text(p, "taskId"))
    return Reply.json(ok(answers, success_key=ctx.success_key))


# -- binding (VPP doc 5) ----------------------------------------------------------------------------------
def bind_devices(t: Tenant, p: Params, ctx: Context) -> Reply:
    lists = t.bind(v.sn_list(p.get("sns"), "sns", ctx.config.max_sns))
    body: dict[str, Any] = {"exception": None, "code": 0, "success": True}
    body.update({key: ",".join(sns) for key, sns in lists.items() if sns})
    return Reply.json(body)


# -- EV charger (EV doc 3) --------------------------------------------------------------------------------
def pile_cmd(t: Tenant, p: Params, ctx: Context) -> Reply:
    mode = v.pile_mode(p)
    sns = v.sn_list(p.get("sns"), "sns", ctx.config.max_sns)
    url = v.callback_url(p)
    task, plan = t.commands.pile_cmd(sns, mode)
    ctx.schedule(url, plan)
    return Reply.json({"success": True, "exception": "accept success", "result": {"taskId": task.task_id}})


def pile_info(t: Tenant, p: Params, ctx: Context) -> Reply:
    charger = t.chargers.get(v.text(p, "pileSn"))
    if charger is None:
        raise ApiFailure(MSG_NO_AUTH, CODE_NO_AUTH)
    charger.advance(t.clock(), ctx.config.time_scale)
    return Reply.json({"success": True, "exception": "query success", "result": charger.info()})


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("single_control", "vpp", "/commandapi/singleControl", single_control, control=True),
    Endpoint("batch_control", "vpp", "/commandapi/batchTempControl", batch_control, control=True),
    Endpoint("group_control", "vpp", "/commandapi/groupControl", group_control, control=True),
    Endpoint("group_add", "vpp", "/vppgroup/add", group_add),
    Endpoint("group_update", "vpp", "/vppgroup/updateById", group_update),
    Endpoint("group_delete", "vpp", "/vppgroup/deleteById", group_delete),
    Endpoint("group_delete_batch", "vpp", "/vppgroup/deleteBatch", group_delete_batch),
    Endpoint("group_query", "vpp", "/vppgroup/findAll", group_query),
    Endpoint("group_fuzzy_query", "vpp", "/vppgroup/findLikeName", group_fuzzy_query),
    Endpoint("inverter_add", "vpp", "/vppinverter/add", inverter_add),
    Endpoint("inverter_delete", "vpp", "/vppinverter/deleteById", inverter_delete),
    Endpoint("inverter_delete_batch", "vpp", "/vppinverter/deleteBatch", inverter_delete_batch),
    Endpoint("inverter_update", "vpp", "/vppinverter/updateById", inverter_update),
    Endpoint("inverter_query", "vpp", "/vppinverter/findByGroupId", inverter_query),
    Endpoint("inverter_fuzzy_query", "vpp", "/vppinverter/findByLike", inverter_fuzzy_query),
    Endpoint("query_command", "vpp", "/commandapi/queryCommand", query_command),
    Endpoint("query_result", "vpp", "/commandapi/getQueryResult", query_result),
    Endpoint("bind_devices", "vpp", "/api/regsn", bind_devices),
    Endpoint("pile_cmd", "ev", "/pileCmd", pile_cmd, control=True),
    Endpoint("pile_info", "ev", "/getPileInfo", pile_info),
)
BY_PATH: dict[str, Endpoint] = {e.full_path: e for e in ENDPOINTS}
BY_NAME: dict[str, Endpoint] = {e.name: e for e in ENDPOINTS}
