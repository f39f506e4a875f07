"""Answer bodies of the fake cloud: the vendor's success and error shapes, byte for byte.

Vendor codes used by the simulator (see NOTES.md "What public integrations have seen"):

| code | exception | when |
|---|---|---|
| 1 | There have been several violations in a row, ... next hour | lockout |
| 3 / 104 | Request calls within the current minute > threshold | rate limit (VPP / EV) |
| 103 | token invalid! | unknown token |
| 1003 | no auth! | a device SN that is not bound to the token's account |
| 1002 | (field specific text) | invalid or missing parameter |
| 2 | (rule specific text) | business rule: unknown id, already a member, empty group, ... |
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

CODE_LOCKOUT = 1
CODE_BUSINESS = 2
CODE_RATE_VPP = 3
CODE_RATE_EV = 104
CODE_TOKEN = 103
CODE_PARAM = 1002
CODE_NO_AUTH = 1003

MSG_MINUTE = "Request calls within the current minute > threshold"
MSG_DAY = "Request calls within the current day > threshold"
MSG_LOCKOUT = "There have been several violations in a row, and the system will prohibit calls within the next hour"
MSG_TOKEN = "token invalid!"
MSG_NO_AUTH = "no auth!"

HTML_503 = (
    "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n"
    "<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
HTML_200 = (
    '<!DOCTYPE html><html><head><meta charset="utf-8"><title>SolaxCloud</title></head>'
    '<body><div class="error"><h2>System maintenance</h2><p>The service is being upgraded, '
    "please try again later.</p></div></body></html>"
)

JSON_TYPE = "application/json;charset=UTF-8"
HTML_TYPE = "text/html;charset=UTF-8"

_CREATE_TIME = re.compile(r'"createTime":"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)"')
_ANY_TIME = re.compile(r'"(createTime|updateTime)":"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)"')


class ApiFailure(Exception):
    """A `success: false` answer: raised by handlers, rendered by the app."""

    def __init__(self, exception: str, code: int = CODE_PARAM) -> None:
        super().__init__(exception)
        self.exception = exception
        self.code = code


def bad_param(text: str) -> ApiFailure:
    return ApiFailure(text, CODE_PARAM)


def rule_broken(text: str) -> ApiFailure:
    return ApiFailure(text, CODE_BUSINESS)


def ok(result: Any, exception: str | None = None, success_key: str = "success") -> dict[str, Any]:
    """The VPP document's order: exception, result, success."""
    return {"exception": exception, "result": result, success_key: True}


def failure(exception: str, code: int) -> dict[str, Any]:
    return {"success": False, "exception": exception, "code": code}


@dataclass
class Reply:
    """What the WSGI layer sends: a status, a body, and the fault effects to perform."""

    status: int = 200
    body: bytes = b""
    content_type: str = JSON_TYPE
    delay: float = 0.0  # seconds to sleep before answering (timeout faults)
    reset: bool = False  # close the socket without an answer

    @classmethod
    def json(
        cls, data: Any, status: int = 200, unquote_create_time: bool = False, unquote_times: bool = False
    ) -> Reply:
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        if unquote_times:  # a cloud that leaves every time unquoted (profile "unquoted-times")
            text = _ANY_TIME.sub(r'"\1":\2', text)
        elif unquote_create_time:
            # The inverter query examples of the VPP doc carry `"createTime":2020-12-10 15:32:17`.
            text = _CREATE_TIME.sub(r'"createTime":\1', text)
        return cls(status=status, body=text.encode())

    @classmethod
    def html(cls, text: str, status: int) -> Reply:
        return cls(status=status, body=text.encode(), content_type=HTML_TYPE)

    @classmethod
    def spring_error(cls, status: int, error: str, path: str, timestamp: str) -> Reply:
        """The Spring Boot default error body, which is what the cloud's gateway answers for 404/405/400."""
        return cls.json({"timestamp": timestamp, "status": status, "error": error, "path": path}, status)
