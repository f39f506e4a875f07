"""Cloud profiles: named sets of knobs for a cloud that answers within the documents, but differently.

Our own simulator's habits (a page cap of 1,000, ids as the examples print them, a group whose updateTime
never moves on a member write) must not become the mirror's assumptions. Each profile is one way a real
cloud may differ; tests run against several of them (`running_simulator(profile="capped100")`) and the
command line picks one (`python -m solax.simulator --profile strict`). Knobs passed beside a profile win.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .config import SimConfig


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    knobs: dict[str, Any] = field(default_factory=dict)


_ALL = (
    Profile("default", "the documents' quirks as our simulator always served them (page cap 1,000)"),
    Profile("capped100", "pages capped at 100 items whatever `size` asks", {"max_page_size": 100}),
    Profile("capped50", "pages capped at 50 items whatever `size` asks", {"max_page_size": 50}),
    Profile("numeric-ids", "every id a JSON number (groups, members, new ids, command ids)",
            {"id_style": "numbers"}),
    Profile("string-ids", "every id a JSON string", {"id_style": "strings"}),
    Profile("quoted-times", "valid JSON: every time quoted, even the inverter query's createTime",
            {"unquoted_create_time": False}),
    Profile("unquoted-times", "every createTime and updateTime unquoted, in group and member answers",
            {"unquoted_times": True}),
    Profile("touching", "member writes set the group's updateTime", {"member_write_touches_group": True}),
    Profile("lists-ungrouped", "the member fuzzy query by SN also reports bound inverters in no group, "
            "groupStatus 0 (the documents define the flag)", {"fuzzy_lists_ungrouped": True}),
    Profile("slow-pages", "each paged query answers after 0.5 s (the state is read when it arrives)",
            {"page_delay": 0.5}),
    Profile("shifting-count", "every second paged query finds its list grown by one item",
            {"count_change_every": 2}),
    Profile("strict", "what the documents allow and we must not assume otherwise: pages capped at 100, "
            "ids as strings, every time quoted, member writes leave the group's updateTime alone",
            {"max_page_size": 100, "id_style": "strings", "unquoted_create_time": False,
             "member_write_touches_group": False}),
    Profile("hostile", "pages capped at 50, ids as numbers, every time unquoted, slow pages (0.05 s)",
            {"max_page_size": 50, "id_style": "numbers", "unquoted_times": True, "page_delay": 0.05}),
)
PROFILES: dict[str, Profile] = {profile.name: profile for profile in _ALL}


def profile_knobs(name: str | None) -> dict[str, Any]:
    """Return the knobs of profile `name` (None: the default profile); ValueError names the known ones."""
    profile = PROFILES.get(name or "default")
    if profile is None:
        raise ValueError(f"unknown simulator profile {name!r}; one of {', '.join(PROFILES)}")
    SimConfig().updated(profile.knobs)  # a profile's knobs are valid knobs
    return dict(profile.knobs)


def with_profile(name: str | None, knobs: dict[str, Any]) -> dict[str, Any]:
    """Return the profile's knobs overridden by `knobs`."""
    return {**profile_knobs(name), **knobs}
