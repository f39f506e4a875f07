"""Issue 12's "Done when", walked end to end over real HTTP: a cloud that caps pages at 100 and leaves a
group's update time alone on a member add (the simulator's "strict" profile), serving the demo fleet
with one group grown past two pages. A full sync mirrors every group and member exactly, with the calls
it needs and no more; the call estimate shown before a sync uses the cap SolaX returned; a member added
from the page has its results matched; edits made while a sync page is in flight survive the sync; and a
group command's page shows every device the cloud controlled.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Iterator

import pytest

from fleet.commands import service
from fleet.commands.targets import Target
from fleet.mirror import sync, writes
from fleet.models import ApiCall, CallState, CommandState, DeviceState, Group, Inverter, Priority
from fleet.pipeline import dispatch, ledger, queue
from solax.simulator.testing import SimulatorHandle, running_simulator
from tests.conftest import FAST_SIM
from tests.fleet.test_command_tracking import FORCED_CHARGE, drive
from tests.fleet.test_sync import _cloud, _free_sns, _mirrored, _pump_in_thread
from tests.support.once import key_from

pytestmark = pytest.mark.django_db(transaction=True)
GROWN = 120  # members added to the biggest group, past the cap of 100


@pytest.fixture
def simulator(request) -> Iterator[SimulatorHandle]:  # type: ignore[no-untyped-def]
    profile = getattr(request, "param", "strict")
    with running_simulator(profile=profile, fleet="demo", seed=7, **FAST_SIM) as handle:
        tenant = handle.sim.tenant()
        big = max(tenant.groups.values(), key=lambda g: len(g.members))
        for sn in [i.sn for i in tenant.inverters.values() if i.bound and i.member_id is None][:GROWN]:
            tenant.member_add(big.id, sn)
        yield handle


def _groups(account):  # type: ignore[no-untyped-def]
    return set(Group.objects.filter(account=account, removed=False).values_list("remote_id", "name", "device_count"))


def _cloud_groups(tenant):  # type: ignore[no-untyped-def]
    return {(g.id, g.name, len(g.members)) for g in tenant.groups.values()}


def test_done_when_against_a_cloud_capping_pages_at_100(sim_account, fast_commands, simulator, operator_client,
                                                        viewer_client):
    tenant = simulator.sim.tenant()
    assert simulator.sim.config.max_page_size == 100 and not simulator.sim.config.member_write_touches_group
    account = sim_account
    assert sync.estimated_calls(account) == 1  # nothing mirrored yet: one group page

    # a full sync mirrors every group and member exactly, with the pages it needs at the cap
    run = sync.start_sync(account, full=True)
    dispatch.pump(account.pk, wait=False)
    run.refresh_from_db()
    assert run.state == "done", (run.error, run.incomplete)
    assert _groups(account) == _cloud_groups(tenant)
    assert _mirrored(account) == _cloud(tenant)
    big = Group.objects.filter(account=account).order_by("-device_count").first()
    assert big.device_count == len(tenant.groups[big.remote_id].members) > 100
    needed = 1 + sum(max(1, math.ceil(len(g.members) / 100)) for g in tenant.groups.values())
    assert run.calls_used == run.pages_done == run.pages_total == needed  # pages used = pages needed
    # the cap SolaX returned is learned, and the estimate shown before the next sync uses it
    account.refresh_from_db()
    assert account.sync_page_cap == 100
    assert sync.estimated_calls(account) == needed
    panel = operator_client.get("/groups/").content.decode()
    assert f"up to {needed} calls if every group changed, in pages of 100" in panel

    # a member added from the group's page; its re-read is lost, and the cloud leaves the group's update time
    (page_added,) = _free_sns(simulator, 1)
    url = f"/groups/{big.code}/members/add/"
    response = operator_client.post(url, {"sn": page_added, "once": key_from(operator_client, f"/groups/{big.code}/")})
    assert response.status_code in (200, 302)
    add = ledger.claim_next(account.pk)
    assert add is not None and add.endpoint == "inverter_add"
    dispatch.send(add)
    assert Inverter.objects.get(account=account, inverter_sn=page_added).dongle_sn == ""
    assert queue.cancel(ApiCall.objects.get(endpoint="inverter_query", state=CallState.QUEUED))

    # a sync whose member page of that group is in flight while an operator replaces, removes and adds
    replaced, removed = list(big.members.filter(removed=False).exclude(inverter_sn=page_added).order_by("pk"))[:2]
    new_sn, added_sn = _free_sns(simulator, 2)
    simulator.sim.configure(page_delay=1.0)
    run = sync.start_sync(account)
    errors: list[BaseException] = []
    worker = threading.Thread(target=_pump_in_thread, args=(account.pk, errors))
    worker.start()
    try:
        deadline = time.monotonic() + 30
        in_flight = ApiCall.objects.filter(endpoint="inverter_query", state=CallState.SENDING, context__group=big.pk)
        while not in_flight.exists():
            assert time.monotonic() < deadline, "the big group's member page was never sent"
            time.sleep(0.02)
        page = in_flight.get()
        writes.request_member_replace(replaced, new_sn)
        writes.request_members_delete(big, [removed])
        writes.request_member_add(big, added_sn)
        for _ in range(3):
            write = ledger.claim_next(account.pk)
            assert write is not None and write.priority == Priority.MANAGEMENT
            dispatch.send(write)
        page.refresh_from_db()
        assert page.state == CallState.SENDING, "the page answered before the edits were confirmed"
    finally:
        worker.join(60)
    assert not errors
    simulator.sim.configure(page_delay=0.0)
    dispatch.pump(account.pk, wait=False)
    run.refresh_from_db()
    assert run.state in ("done", "incomplete"), run.error
    replaced.refresh_from_db()
    removed.refresh_from_db()
    assert replaced.inverter_sn == new_sn and not replaced.removed and removed.removed
    assert not Inverter.objects.get(account=account, inverter_sn=added_sn).removed
    assert _mirrored(account) == _cloud(tenant) and _groups(account) == _cloud_groups(tenant)
    run = sync.start_sync(account)
    dispatch.pump(account.pk, wait=False)
    run.refresh_from_db()
    assert run.state == "done" and _mirrored(account) == _cloud(tenant)

    # a group command: every device the cloud controlled is on its page, the page-added one matched
    for member in tenant.groups[big.remote_id].members.values():
        simulator.sim.set_device(member.inverter_sn, online=True)
    command = drive(service.create_command(account, Target("group", group=big), FORCED_CHARGE), seconds=30)
    assert command.state == CommandState.SUCCEEDED, list(command.results.values_list("sn", "state", "answer"))
    controlled = {m.inverter_sn for m in tenant.groups[big.remote_id].members.values()}
    assert command.devices_total == command.devices_answered == len(controlled) > 100
    for sn in (page_added, added_sn, new_sn):
        result = command.results.get(sn=sn)
        assert (result.state, result.dongle_sn) == (DeviceState.SUCCEEDED, tenant.inverters[sn].wifi_sn)
    shown: set[str] = set()
    for number in range(1, math.ceil(len(controlled) / 100) + 1):
        body = viewer_client.get(f"/commands/{command.code}/?page={number}").content.decode()
        shown |= set(re.findall(r"H4[A-Z0-9]{12,}", body)) & controlled
    assert shown == controlled
    assert "answered, not in the mirror" not in viewer_client.get(f"/commands/{command.code}/").content.decode()


@pytest.mark.parametrize("simulator", ["capped100"], indirect=True)
def test_the_estimate_before_a_sync_uses_the_page_size_the_cloud_returned(sim_account, fast_commands, simulator,
                                                                         settings):
    tenant = simulator.sim.tenant()
    account = sim_account
    assert settings.FLEET_SYNC_PAGE_SIZE == 1000
    run = sync.start_sync(account, full=True)
    dispatch.pump(account.pk, wait=False)
    run.refresh_from_db()
    account.refresh_from_db()
    assert run.state == "done" and account.sync_page_cap == 100
    at_cap = 1 + sum(max(1, math.ceil(len(g.members) / 100)) for g in tenant.groups.values())
    asked = 1 + sum(max(1, math.ceil(len(g.members) / 1000)) for g in tenant.groups.values())
    assert sync.estimated_calls(account) == at_cap == run.calls_used > asked
    # the cloud lifts its cap: the next full sync sees full pages at the size asked and forgets it
    simulator.sim.configure(max_page_size=1000)
    run = sync.start_sync(account, full=True)
    dispatch.pump(account.pk, wait=False)
    run.refresh_from_db()
    account.refresh_from_db()
    assert run.state == "done" and account.sync_page_cap is None
    assert sync.estimated_calls(account) == asked == run.calls_used
