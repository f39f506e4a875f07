"""The issue's "done when", over real HTTP: an external script with an operate key plans, sends and
follows a group command to its per-device results through the API (live_server), against the
simulator; a retried POST with the same Idempotency-Key creates one command."""

from __future__ import annotations

import time

import pytest
import requests

from fleet.accounts import api_keys
from fleet.models import ApiCall, Command, Group
from fleet.pipeline import dispatch

pytestmark = pytest.mark.django_db(transaction=True)

FINAL = {"succeeded", "partial", "failed", "unknown", "expired", "cancelled"}


def test_an_operate_key_plans_sends_and_follows_a_group_command(live_server, mirrored_fleet, fast_commands,
                                                                simulator):
    account = mirrored_fleet
    _, key = api_keys.create(account.organization, "e2e script", "operate")
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {key}"
    base = live_server.url + "/api/v1"

    groups = http.get(f"{base}/groups", params={"limit": 200}, timeout=10).json()["items"]
    group = max(groups, key=lambda g: g["device_count"])
    members = Group.objects.get(code=group["code"]).members.filter(removed=False).count()
    body = {"account": str(account.code), "target": {"kind": "group", "group": group["code"]},
            "action": {"superType": 1, "systemSwitch": 1}}

    plan = http.post(f"{base}/commands/plan", json=body, timeout=10)
    assert plan.status_code == 200, plan.text
    assert plan.json()["sends"] == 1 and plan.json()["devices"] == members and plan.json()["fits_today"]
    assert not Command.objects.exists()

    sent = http.post(f"{base}/commands", json=body, headers={"Idempotency-Key": "e2e-1"}, timeout=10)
    assert sent.status_code == 201, sent.text
    retried = http.post(f"{base}/commands", json=body, headers={"Idempotency-Key": "e2e-1"}, timeout=10)
    assert retried.status_code == 200 and retried.json()["code"] == sent.json()["code"]
    assert Command.objects.count() == 1
    assert ApiCall.objects.filter(endpoint="group_control").count() == 1

    url = live_server.url + sent.json()["url"]
    deadline = time.monotonic() + 60
    while True:
        dispatch.pump(account.pk, wait=False)  # what the worker does
        command = http.get(url, timeout=10).json()
        if command["state"] in FINAL:
            break
        assert time.monotonic() < deadline, f"still {command['state']}"
        time.sleep(0.1)
    assert command["state"] in ("succeeded", "partial"), command
    assert command["calls_total"] == 1 and command["calls_sent"] == 1
    assert command["devices"]["total"] == members and command["devices"]["answered"] == members

    results, page_url = [], live_server.url + command["results"] + "?limit=3"
    while page_url:
        page = http.get(page_url, timeout=10).json()
        results += page["items"]
        page_url = page["next"]
    assert len(results) == members
    assert {r["state"] for r in results} <= {"succeeded", "failed", "no_answer"}
    assert sum(r["state"] == "succeeded" for r in results) == command["devices"]["succeeded"] > 0
    assert all(r["answered_at"] is None or "+" in r["answered_at"] for r in results)
    assert Command.objects.get().api_key.name == "e2e script"
