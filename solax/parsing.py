"""Tolerant parsing of SolaX Cloud answers (see solax-api/NOTES.md for every quirk handled here).

The cloud's JSON is not always JSON: timestamps arrive unquoted (``"createTime":2020-12-10 15:32:17``),
ids arrive as numbers larger than 2**53, the success flag is ``success`` or ``isSuccess``, pending
results are the string ``"null"``. :func:`load_json` parses strictly first and mends known damage only
when that fails; integers under id-like keys stay exact strings. Anything still not understood raises
:class:`~solax.errors.ResponseParseError` carrying the raw text, never another exception.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from solax.errors import ResponseParseError, bound_text
from solax.models import BindResult, Callback, Envelope, Group, Member, Page, PileInfo

__all__ = [
    "MAX_RAW_CHARS",
    "load_json",
    "parse_bind_result",
    "parse_callback",
    "parse_cloud_time",
    "parse_envelope",
    "parse_group_page",
    "parse_id",
    "parse_member_page",
    "parse_pile_info",
    "parse_query_result",
    "parse_task_id",
    "repair_json",
]

#: Longest body kept on an Envelope (characters): a page of 100 members is about 20 000.
MAX_RAW_CHARS = 65_536

_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_BARE_KEY = re.compile(r"([A-Za-z_$][\w$\- ]{0,63}?)\s*:")
_VALUE_END = re.compile(r"[,}\]\r\n]")
_NULLISH = frozenset({"", "null", "none"})


class _Int(str):
    """An integer literal kept as its exact digits until we know whether it is an id."""


def _is_id_key(key: str | None) -> bool:
    """Return True when integers under ``key`` are identifiers (kept as str), not quantities."""
    if key is None:
        return False
    if key in ("id", "ids", "result") or key.endswith(("Id", "Ids", "ID")):
        return True
    return key.lower().endswith(("sn", "sns", "snlist"))


def _plain(value: Any, key: str | None) -> Any:
    """Return ``value`` with every ``_Int`` turned into ``str`` (id-like key) or ``int`` (anything else)."""
    if isinstance(value, _Int):
        if _is_id_key(key):
            return str(value)
        try:
            return int(value)
        except ValueError:  # more digits than Python converts: keep the text rather than fail
            return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(item, key) for item in value]
    return value


def _to_text(body: str | bytes) -> str:
    """Return the body as text without a BOM (undecodable bytes are replaced, not fatal)."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    return text.lstrip("\ufeff")


def _parse_error(message: str, raw: str) -> ResponseParseError:
    return ResponseParseError(message, body=bound_text(raw, MAX_RAW_CHARS))


def load_json(body: str | bytes) -> Any:
    """Return the parsed JSON object or array, mending known damage; integers stay exact.

    Raises ResponseParseError (with the raw text) when the body is not JSON even after repair.
    """
    text = _to_text(body)
    if not text.strip().startswith(("{", "[")):
        raise _parse_error("the answer is not JSON", text)
    try:
        return _plain(json.loads(text, parse_int=_Int), None)
    except (ValueError, RecursionError):
        pass
    try:
        return _plain(json.loads(repair_json(text), parse_int=_Int), None)
    except (ValueError, RecursionError) as exc:
        detail = str(exc) if isinstance(exc, json.JSONDecodeError) else type(exc).__name__
        raise _parse_error(f"malformed JSON: {detail}", text) from None


def _drop_trailing_comma(out: list[str]) -> None:
    for index in range(len(out) - 1, -1, -1):
        if out[index].isspace():
            continue
        if out[index] == ",":
            del out[index]
        return


def _string_end(text: str, start: int) -> int:
    """Return the index just after the string starting at ``start``, or -1 when it never ends."""
    index = start + 1
    while index < len(text):
        if text[index] == "\\":
            index += 2
        elif text[index] == '"':
            return index + 1
        else:
            index += 1
    return -1


def _mend_scalar(token: str) -> str:
    """Return a bare value token as valid JSON: numbers and literals unchanged, anything else quoted."""
    if _NUMBER.fullmatch(token) or token in ("true", "false", "null"):
        return token
    lowered = token.lower()
    if lowered in ("true", "false", "null"):
        return lowered
    return "null" if lowered == "none" else json.dumps(token)


def repair_json(text: str) -> str:
    """Return ``text`` with the damage seen in SolaX answers mended, strings left untouched.

    Quotes bare values (``2020-12-10 15:32:17``, ``SW123``) and bare keys, lowercases ``True``/``None``,
    inserts commas missing between members, drops trailing commas and stray closers, and closes
    brackets left open at the end only when the text ends with a closer (the doc's group-query example
    lacks its last ``}``): a body cut off in the middle of a value is not "repaired" into a wrong id.
    """
    out: list[str] = []
    stack: list[str] = []
    state = "value"  # what comes next: "key", "colon", "value", or "after" a complete value
    index = 0
    while index < len(text):
        char = text[index]
        if char.isspace():
            out.append(char)
            index += 1
            continue
        if state == "after" and stack and char in '"{[':
            out.append(",")  # a comma missing between two members (the EV callback example)
            state = "key" if stack[-1] == "{" else "value"
        if char == '"':
            end = _string_end(text, index)
            if end < 0:
                return text  # unterminated string: truncated, not repairable
            out.append(text[index:end])
            index, state = end, "colon" if state == "key" else "after"
            continue
        if char in "{[":
            stack.append(char)
            state = "key" if char == "{" else "value"
        elif char in "}]":
            _drop_trailing_comma(out)
            if not stack:
                index += 1  # stray closer after the top-level value
                continue
            stack.pop()
            state = "after"
        elif char == ",":
            state = "key" if stack and stack[-1] == "{" else "value"
        elif char == ":":
            state = "value"
        elif state == "key" and (match := _BARE_KEY.match(text, index)):
            out.append(json.dumps(match.group(1).strip()) + ":")
            index, state = match.end(), "value"
            continue
        elif state == "value":
            end_match = _VALUE_END.search(text, index)
            token = text[index : end_match.start() if end_match else len(text)].rstrip()
            out.append(_mend_scalar(token))
            index, state = index + len(token), "after"
            continue
        else:
            return text  # damage we do not know how to mend: let the strict parser report it
        out.append(char)
        index += 1
    if stack and text.rstrip().endswith(("}", "]")):
        _drop_trailing_comma(out)
        out.extend("}" if opener == "{" else "]" for opener in reversed(stack))
    return "".join(out)


def _flag(value: Any) -> bool | None:
    """Return a boolean from ``true``/``"true"``/``1``, or None when ``value`` is not a flag."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    return None


def _find_key(data: Mapping[str, Any], *names: str) -> str | None:
    """Return the first key of ``data`` equal, ignoring case, to one of ``names``."""
    lowered = {key.lower(): key for key in data}
    for name in names:
        if name.lower() in lowered:
            return lowered[name.lower()]
    return None


def _optional_text(value: Any) -> str | None:
    """Return ``value`` as text, or None for JSON null, ``"null"`` and the empty string."""
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value)
    return None if text.strip().lower() in _NULLISH else text


def _name_text(value: Any) -> str:
    """Return a name someone typed: only a JSON null (or no key) is no name. Unlike the vendor's
    placeholders, the strings "null", "None" and "" are kept as they are: a group may be called that."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def parse_envelope(body: str | bytes, *, status: int | None = None) -> Envelope:
    """Return the :class:`Envelope` of one answer; raise ResponseParseError when it has no success flag.

    Accepts ``success`` or ``isSuccess`` (bool, "true", 1), a ``success`` misplaced inside ``result``
    (the doc's group-query example), ``exception`` with success true ("update succeeded"), and a
    ``result`` that is a plain string.
    """
    text = _to_text(body)
    data = load_json(text)
    if not isinstance(data, dict):
        raise _parse_error("the answer is not a JSON object", text)
    flag_key = _find_key(data, "success", "isSuccess")
    result = data.get("result")
    if flag_key is None and isinstance(result, dict):
        inner = _find_key(result, "success", "isSuccess")
        if inner is not None:
            result = {key: value for key, value in result.items() if key != inner}
            data = {**data, inner: data["result"][inner], "result": result}
            flag_key = inner
    success = _flag(data[flag_key]) if flag_key is not None else None
    if success is None:
        raise _parse_error("the answer has no success flag", text)
    code = data.get(_find_key(data, "code") or "code")
    return Envelope(
        success=success,
        result=result,
        exception=_optional_text(data.get("exception")),
        code=None if code is None else str(code),
        raw=bound_text(text, MAX_RAW_CHARS),
        data=data,
        status=status,
    )


def _shape_error(what: str, value: Any) -> ResponseParseError:
    return ResponseParseError(f"unexpected {what}: {bound_text(repr(value), 200)}")


def parse_id(result: Any, what: str = "id") -> str:
    """Return an id answered as ``result`` (number or string) as ``str``; raise when there is none."""
    if isinstance(result, bool) or not isinstance(result, (str, int)) or _optional_text(result) is None:
        raise _shape_error(what, result)
    return str(result).strip()


def _int(value: Any, what: str, default: int | None = None) -> int:
    if value is None and default is not None:
        return default
    try:
        return int(str(value).strip())
    except ValueError:
        raise _shape_error(what, value) from None


def _float(value: Any, what: str) -> float | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in _NULLISH):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise _shape_error(what, value) from None


def _page_items(result: Any, what: str) -> tuple[int, list[dict[str, Any]]]:
    """Return ``num`` and the item dicts of a paged ``result``."""
    if not isinstance(result, dict):
        raise _shape_error(f"{what} page", result)
    items = result.get("list") or []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise _shape_error(f"{what} list", items)
    return _int(result.get("num"), f"{what} count", default=len(items)), items


def parse_group_page(result: Any) -> Page[Group]:
    """Return the groups of a Group Query / Group Fuzzy Query result (sections 2.5, 2.6)."""
    total, items = _page_items(result, "group")
    groups = [
        Group(
            id=parse_id(item.get("id"), "group id"),
            name=_name_text(item.get("name")),
            member_count=_int(item.get("num"), "member count", default=0),
            create_time=_optional_text(item.get("createTime")),
            update_time=_optional_text(item.get("updateTime")),
        )
        for item in items
    ]
    return Page(total=total, items=groups)


def parse_member_page(result: Any) -> Page[Member]:
    """Return the members of an Inverter Query / Inverter Fuzzy query result (sections 3.5, 3.6)."""
    total, items = _page_items(result, "inverter")
    members = [
        Member(
            id=parse_id(item.get("id"), "inverter id"),
            group_id=parse_id(item.get("groupId"), "group id"),
            wifi_sn=_optional_text(item.get("wifiSn")),
            inverter_sn=_optional_text(item.get("inverterSn")),
            in_group=_int(item.get("groupStatus"), "groupStatus", default=1) == 1,
            rated_power=_float(item.get("ratePower"), "ratePower"),
            create_time=_optional_text(item.get("createTime")),
            update_time=_optional_text(item.get("updateTime")),
        )
        for item in items
    ]
    return Page(total=total, items=members)


def parse_task_id(result: Any) -> str | None:
    """Return the ``taskId`` of a Command Query (4.1) or pileCmd result; None while not yet assigned."""
    if isinstance(result, dict):
        result = result.get(_find_key(result, "taskId") or "taskId")
    if _optional_text(result) is None:
        return None
    return parse_id(result, "task id")


def parse_query_result(result: Any) -> dict[str, str | None]:
    """Return dongle SN -> answer of a Result Query (4.2); None (``"null"``) means not answered yet."""
    if result is None or (isinstance(result, str) and result.strip().lower() in _NULLISH):
        return {}
    if not isinstance(result, dict):
        raise _shape_error("result-query result", result)
    return {str(sn): _optional_text(answer) for sn, answer in result.items()}


def _sn_list(value: Any) -> list[str]:
    """Return SNs from a comma-separated string or a list, blanks dropped."""
    if value is None:
        return []
    parts = value if isinstance(value, list) else str(value).split(",")
    sns = []
    for part in parts:
        text = (_optional_text(part) or "").strip()
        if text:
            sns.append(text)
    return sns


def _squash(key: str) -> str:
    return re.sub(r"[\s_\-]", "", key).lower()


def parse_bind_result(body: Mapping[str, Any]) -> BindResult:
    """Return the four SN lists of a device-binding answer (section 5), keys with spaces and all."""
    keys = {_squash(key): key for key in body}

    def listed_under(name: str) -> list[str]:
        return _sn_list(body.get(keys[name])) if name in keys else []

    return BindResult(
        bound=listed_under("bindingsuccess"),
        failed=listed_under("bindingfail"),
        already_bound=listed_under("haveboundsn"),
        unknown=listed_under("nonexistentsn"),
    )


def parse_pile_info(result: Any) -> PileInfo:
    """Return the EV charger state of a getPileInfo result (EV doc 3.2); ``ChargingPower`` in any case."""
    if not isinstance(result, dict):
        raise _shape_error("getPileInfo result", result)
    return PileInfo(
        status=_int(result.get(_find_key(result, "chargerStatus") or "chargerStatus"), "chargerStatus"),
        mode=_int(result.get(_find_key(result, "chargingMode") or "chargingMode"), "chargingMode"),
        power=_float(result.get(_find_key(result, "chargingPower") or "chargingPower"), "chargingPower"),
        energy=_float(result.get(_find_key(result, "chargeEnergy") or "chargeEnergy"), "chargeEnergy"),
    )


def parse_callback(body: str | bytes) -> Callback:
    """Return the EV callback posted to ``callbackUrl`` (EV doc 3.1.6: rspType 1, 2 or 3)."""
    text = _to_text(body)
    data = load_json(text)
    if not isinstance(data, dict):
        raise _parse_error("the callback is not a JSON object", text)
    try:
        rsp_type = _int(data.get("rspType"), "rspType")
        if rsp_type not in (1, 2, 3):
            raise _shape_error("rspType", rsp_type)
        task_id = parse_id(data.get("taskId"), "task id")
    except ResponseParseError as exc:
        raise _parse_error(exc.message, text) from None
    result: dict[str, Any] = data["result"] if isinstance(data.get("result"), dict) else {}
    success = _flag(data.get("success"))
    return Callback(
        rsp_type=rsp_type,
        task_id=task_id,
        success=bool(success),
        code=_optional_text(data.get("code")),
        ack=_optional_text(result.get("ack")),
        sn=_optional_text(result.get("sn")),
        failure_list=_sn_list(result.get("failureList")),
        timeout_list=_sn_list(result.get("timeoutList")),
        raw=bound_text(text, MAX_RAW_CHARS),
    )


def parse_cloud_time(value: str | None) -> datetime | None:
    """Return a cloud time ("YYYY-MM-DD hh:mm:ss", site-local) as a naive datetime, None if unparseable."""
    if not value:
        return None
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            return datetime.strptime(value.strip(), fmt)
        except ValueError:
            continue
    return None
