"""The sync against the simulator over real HTTP: paging, removal, unchanged groups, progress."""

from __future__ import annotations

import math
from io import StringIO

import pytest
from django.core.management import call_command

from fleet import calls, sync
from fleet.models import ApiCall, Group, Inverter, SyncRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def roomy(sim_account, simulator, settings):  # type: ignore[no-untyped-def]
    """Lift both minute limits so a test can page through small pages without waiting."""
    settings.SOLAX_MAX_CALLS_PER_MINUTE = 1000
    simulator.sim.configure(per_minute=1000)
    sim_account.calls_per_minute = 1000
    sim_account.save()
    return sim_account


def _tenant(simulator):  # type: ignore[no-untyped-def]
    return simulator.sim.tenants[simulator.token]


def _run_to_end(account) -> SyncRun:  # type: ignore[no-untyped-def]
    run = sync.start_sync(account)
    calls.pump(account.pk, wait=False)
    run.refresh_from_db()
    return run


def _sent(simulator, endpoint: str) -> int:  # type: ignore[no-untyped-def]
    return simulator.counters()["tokens"][simulator.token]["calls"].get(endpoint, 0)


def test_it_mirrors_groups_and_members(sim_account, simulator):
    tenant = _tenant(simulator)
    run = _run_to_end(sim_account)
    assert run.state == "done", run.error
    assert Group.objects.filter(account=sim_account, removed=False).count() == len(tenant.groups) == 3
    assert Inverter.objects.filter(account=sim_account, removed=False).count() == len(tenant.members)
    remote = next(iter(tenant.members.values()))
    local = Inverter.objects.get(account=sim_account, remote_id=remote.id)
    assert local.inverter_sn == remote.inverter_sn
    assert local.dongle_sn == tenant.inverters[remote.inverter_sn].wifi_sn
    assert local.group.remote_id == remote.group_id
    assert local.remote_created is not None
    # one group page and one member page per group: exactly what it needs
    assert run.calls_used == run.pages_done == run.pages_total == 4
    assert (run.groups_seen, run.members_seen) == (3, len(tenant.members))
    assert _sent(simulator, "group_query") == 1 and _sent(simulator, "inverter_query") == 3
    assert set(ApiCall.objects.values_list("origin_code", flat=True)) == {run.code}
    assert set(ApiCall.objects.values_list("priority", flat=True)) == {3}


def test_it_pages_with_the_configured_size(roomy, simulator, settings):
    settings.FLEET_SYNC_PAGE_SIZE = 2
    tenant = _tenant(simulator)
    run = _run_to_end(roomy)
    assert run.state == "done", run.error
    member_pages = sum(math.ceil(len(g.members) / 2) for g in tenant.groups.values())
    assert _sent(simulator, "group_query") == 2
    assert _sent(simulator, "inverter_query") == member_pages
    assert run.pages_total == run.pages_done == 2 + member_pages
    assert Inverter.objects.filter(account=roomy, removed=False).count() == len(tenant.members)


def test_it_marks_what_left_the_cloud_as_removed(roomy, simulator):
    tenant = _tenant(simulator)
    _run_to_end(roomy)
    gone_group, kept_group = list(tenant.groups)[:2]
    gone_member = next(iter(tenant.groups[kept_group].members))
    with tenant.lock:
        tenant.group_delete([gone_group])
        tenant.member_delete([gone_member])
    run = _run_to_end(roomy)
    assert run.state == "done", run.error
    group = Group.objects.get(remote_id=gone_group)
    assert group.removed and all(m.removed for m in group.members.all())
    assert Inverter.objects.get(remote_id=gone_member).removed
    assert Group.objects.filter(account=roomy, removed=False).count() == 2
    assert Inverter.objects.filter(account=roomy, removed=False).count() == len(tenant.members)


def test_it_skips_unchanged_groups(roomy, simulator):
    tenant = _tenant(simulator)
    _run_to_end(roomy)
    changed = list(tenant.groups)[0]
    with tenant.lock:
        tenant.group_update(changed, "Renamed in the cloud")
    before = _sent(simulator, "inverter_query")
    run = _run_to_end(roomy)
    assert run.state == "done"
    assert _sent(simulator, "inverter_query") - before == 1  # only the renamed group
    assert run.calls_used == 2
    assert Group.objects.get(remote_id=changed).name == "Renamed in the cloud"


def test_it_rereads_unchanged_groups_after_a_day_or_when_full(roomy, simulator, settings):
    _run_to_end(roomy)
    before = _sent(simulator, "inverter_query")
    run = sync.start_sync(roomy, full=True)
    calls.pump(roomy.pk, wait=False)
    run.refresh_from_db()
    assert _sent(simulator, "inverter_query") - before == 3 and run.calls_used == 4
    Group.objects.update(members_synced_at=None)
    run = _run_to_end(roomy)
    assert run.calls_used == 4


def test_a_failed_page_fails_the_run_and_removes_nothing(roomy, simulator):
    _run_to_end(roomy)
    Group.objects.update(members_synced_at=None)
    simulator.sim.configure(faults=[{"kind": "token_invalid", "endpoint": "inverter_query", "count": 10}])
    run = _run_to_end(roomy)
    assert run.state in ("failed", "running")
    assert not Inverter.objects.filter(removed=True).exists()


def test_one_run_at_a_time(sim_account):
    first = sync.start_sync(sim_account)
    assert sync.start_sync(sim_account) == first
    assert SyncRun.objects.count() == 1 and ApiCall.objects.count() == 1


def test_the_periodic_sync_waits_for_its_interval_and_budget(sim_account, settings):
    assert len(sync.sync_due_accounts()) == 1
    assert sync.sync_due_accounts() == []  # one is running
    SyncRun.objects.update(state="done")
    assert sync.sync_due_accounts() == []  # too recent
    settings.FLEET_SYNC_INTERVAL_MINUTES = 0
    sim_account.calls_per_day = 150  # 100 kept as margin, 30 for control: 20 left
    sim_account.save()
    Group.objects.bulk_create(Group(account=sim_account, remote_id=str(i), name=f"g{i}", device_count=1)
                              for i in range(30))
    assert sync.sync_due_accounts() == []


def test_the_command_runs_one_sync(sim_account):
    out = StringIO()
    call_command("sync_fleet", "--account", "Simulated", stdout=out)
    assert "done, 3 groups" in out.getvalue()
    assert SyncRun.objects.get().state == "done"
