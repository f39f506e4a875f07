"""Typed responses of the SolaX Cloud APIs.

Every id, SN and task id is a ``str``: the cloud sends ids as JSON numbers larger than 2**53, which a
float would corrupt. Times are kept as the cloud sends them ("YYYY-MM-DD hh:mm:ss", the site's local
time, no zone); :func:`solax.parsing.parse_cloud_time` turns one into a naive ``datetime``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

__all__ = ["BindResult", "Callback", "Envelope", "Group", "Member", "Page", "PileInfo"]

T = TypeVar("T")


@dataclass(frozen=True)
class Envelope:
    """One parsed answer: ``{"success", "exception", "result", "code"}`` plus the whole body.

    ``result`` is the parsed ``result`` value with ids as ``str``; ``data`` is the whole top-level
    object (device binding puts its answer there, not in ``result``); ``raw`` is the body text, bounded.
    """

    success: bool
    result: Any
    exception: str | None
    code: str | None
    raw: str
    data: dict[str, Any] = field(default_factory=dict)
    status: int | None = None


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a paged query: ``total`` is the cloud's ``num`` (all matches, not this page)."""

    total: int
    items: list[T]


@dataclass(frozen=True)
class Group:
    """A VPP group (section 2.5): ``member_count`` is the cloud's ``num``."""

    id: str
    name: str
    member_count: int
    create_time: str | None
    update_time: str | None


@dataclass(frozen=True)
class Member:
    """An inverter's membership of a group (section 3.5); ``id`` is the membership ("inverter") id."""

    id: str
    group_id: str
    wifi_sn: str | None
    inverter_sn: str | None
    in_group: bool
    rated_power: float | None
    create_time: str | None
    update_time: str | None


@dataclass(frozen=True)
class BindResult:
    """The four lists of a device-binding answer (section 5), each of registration numbers."""

    bound: list[str]
    failed: list[str]
    already_bound: list[str]
    unknown: list[str]


@dataclass(frozen=True)
class PileInfo:
    """An EV charger's state (EV doc 3.2): ``status`` 0 Available, 2 Charging...; ``mode`` a PileMode.

    ``power`` and ``energy`` are as the cloud reports them (the document gives no unit), None when absent.
    """

    status: int
    mode: int
    power: float | None
    energy: float | None


@dataclass(frozen=True)
class Callback:
    """One EV command callback (EV doc 3.1.6).

    ``rsp_type`` 1: the command was issued (``code`` "0" all, "1" partly, "2" none; ``failure_list``);
    2: one device answered (``sn``; ``code`` "0" ok, "1" not received, "2" execution failed);
    3: the task is complete (``code`` "0" all done, "1" some timed out; ``timeout_list``).
    """

    rsp_type: int
    task_id: str
    success: bool
    code: str | None
    ack: str | None
    sn: str | None = None
    failure_list: list[str] = field(default_factory=list)
    timeout_list: list[str] = field(default_factory=list)
    raw: str = ""

    @property
    def is_final(self) -> bool:
        """Return True for the task-completion callback (rspType 3)."""
        return self.rsp_type == 3
