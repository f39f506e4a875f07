"""Targets of a command: several groups, the whole fleet, a saved selection; the fewest calls."""

from __future__ import annotations

import pytest

from fleet.commands import service
from fleet.commands.actions import CommandError
from fleet.commands.targets import Target, cover, resolve_target
from fleet.models import Command, CommandBatch, DeviceResult, Group, Inverter, SavedSelection

pytestmark = pytest.mark.django_db
ON = {"superType": 1, "systemSwitch": 1}


@pytest.fixture
def groups(account):  # type: ignore[no-untyped-def]
    """Four groups of 95, 60, 30 and 5 members, and one removed group."""
    made = []
    n = 0
    for i, size in enumerate((95, 60, 30, 5)):
        group = Group.objects.create(account=account, remote_id=str(100 + i), name=f"G{i}", device_count=size)
        Inverter.objects.bulk_create(
            Inverter(account=account, group=group, remote_id=str(n + k), inverter_sn=f"SN{n + k:06d}",
                     dongle_sn=f"DG{n + k:06d}") for k in range(size))
        n += size
        made.append(group)
    gone = Group.objects.create(account=account, remote_id="999", name="Gone", removed=True)
    Inverter.objects.create(account=account, group=gone, remote_id="x", inverter_sn="SNGONE")
    return made


def _sizes(batches):  # type: ignore[no-untyped-def]
    return sorted((("group", b.group.name) if b.group else ("sns", len(b.sns)) for b in batches), key=str)


def test_the_whole_fleet_is_every_member_of_every_group_still_in_the_cloud(account, groups):
    resolved = resolve_target(account, Target("fleet"))
    assert len(resolved.devices) == 190 and "SNGONE" not in resolved.sns


def test_the_fleet_goes_in_the_fewest_calls_for_the_cap(account, groups):
    resolved = resolve_target(account, Target("fleet"))
    account.max_sns_per_call = 100
    # batches alone: 2 calls; no mix of group calls does better
    assert _sizes(cover(account, resolved)) == [("sns", 100), ("sns", 90)]
    account.max_sns_per_call = 50
    # batches alone: 4; G0 (95) as a group call + 95 SNs in 2 batches = 3
    assert _sizes(cover(account, resolved)) == [("group", "G0"), ("sns", 45), ("sns", 50)]
    account.max_sns_per_call = 10
    # group calls for the big groups beat 19 batches; the small rest goes in batches
    plan = cover(account, resolved)
    assert len(plan) == 4 and {b.group.name for b in plan if b.group} == {"G0", "G1", "G2"}  # + 5 SNs in one batch


def test_every_device_is_in_exactly_one_call(account, groups):
    account.max_sns_per_call = 10
    resolved = resolve_target(account, Target("fleet"))
    covered = []
    for batch in cover(account, resolved):
        covered += batch.sns or list(Inverter.objects.filter(group=batch.group).values_list("inverter_sn", flat=True))
    assert sorted(covered) == sorted(resolved.sns)


def test_a_group_is_a_group_call_only_when_all_its_members_are_targeted(account, groups):
    account.max_sns_per_call = 10
    sns = list(Inverter.objects.filter(group=groups[1]).values_list("inverter_sn", flat=True))[:59]  # 59 of 60
    plan = cover(account, resolve_target(account, Target("selection", sns=tuple(sns))))
    assert all(b.group is None for b in plan) and len(plan) == 6


def test_several_groups_create_one_command_with_results_for_every_member(account, groups):
    account.max_sns_per_call = 40
    account.save()
    command = service.create_command(account, Target("groups", groups=(groups[1], groups[3])), ON)
    assert command.devices_total == 65 and set(command.groups.all()) == {groups[1], groups[3]}
    assert DeviceResult.objects.filter(command=command).count() == 65
    batches = list(CommandBatch.objects.filter(command=command).select_related("call", "group"))
    # 65 SNs in batches of 40 = 2 calls; G1 as a group call + 5 SNs = 2 calls: a tie, batches win
    assert sorted(b.call.endpoint for b in batches) == ["batch_control", "batch_control"]
    assert "2 groups (65 inverters)" in command.label


def test_a_group_call_batch_knows_its_group_and_tracks_its_members(account, groups):
    account.max_sns_per_call = 50
    account.save()
    command = service.create_command(account, Target("fleet"), ON)
    group_batch = CommandBatch.objects.get(command=command, group__isnull=False)
    assert group_batch.group == groups[0] and group_batch.call.endpoint == "group_control"
    assert group_batch.call.params["groupId"] == "100"
    assert DeviceResult.objects.filter(batch=group_batch).count() == 95
    assert Command.objects.get(pk=command.pk).devices_total == 190


def test_a_saved_selection_is_a_target(account, groups):
    selection = SavedSelection.objects.create(account=account, name="Pilot", sns=["SN000001", "SN000002"])
    command = service.create_command(account, Target("saved", selection=selection), ON)
    assert command.selection == selection and command.devices_total == 2
    assert "selection Pilot" in command.label


@pytest.mark.parametrize(("target", "field"), [
    (Target("groups"), "groups"),
    (Target("saved"), "selection"),
])
def test_an_empty_or_missing_target_names_its_field(account, groups, target, field):
    with pytest.raises(CommandError) as info:
        resolve_target(account, target)
    assert field in info.value.errors


def test_other_accounts_groups_and_selections_are_refused(account, other_account, groups):
    theirs = Group.objects.create(account=other_account, remote_id="1", name="Theirs")
    Inverter.objects.create(account=other_account, group=theirs, remote_id="1", inverter_sn="THEIRS1")
    selection = SavedSelection.objects.create(account=other_account, name="Theirs", sns=["THEIRS1"])
    with pytest.raises(CommandError) as info:
        resolve_target(account, Target("groups", groups=(groups[0], theirs)))
    assert "groups" in info.value.errors
    with pytest.raises(CommandError) as info:
        resolve_target(account, Target("saved", selection=selection))
    assert "selection" in info.value.errors
    assert Command.objects.count() == 0


def test_a_saved_selection_with_a_departed_sn_names_it(account, groups):
    selection = SavedSelection.objects.create(account=account, name="Old", sns=["SN000001", "SNLEFT1"])
    with pytest.raises(CommandError) as info:
        resolve_target(account, Target("saved", selection=selection))
    assert "SNLEFT1" in info.value.errors["selection"]


def test_a_selection_larger_than_one_query_can_hold_is_resolved(account):
    group = Group.objects.create(account=account, remote_id="1", name="Big", device_count=40_000)
    Inverter.objects.bulk_create((Inverter(account=account, group=group, remote_id=str(i), inverter_sn=f"B{i:07d}")
                                  for i in range(40_000)), batch_size=5000)
    sns = tuple(f"B{i:07d}" for i in range(40_000))
    resolved = resolve_target(account, Target("selection", sns=sns))
    assert len(resolved.devices) == 40_000


def test_a_group_the_mirror_knows_only_in_part_is_never_a_group_call(account, groups):
    """A group call reaches every member the cloud has: if the cloud counts more members than the
    mirror knows, the group is sent as batches of the targeted SNs, never as a group call."""
    account.max_sns_per_call = 10
    Group.objects.filter(pk=groups[0].pk).update(device_count=96)  # one member added in the cloud since
    plan = cover(account, resolve_target(account, Target("fleet")))
    assert groups[0].pk not in {b.group.pk for b in plan if b.group}
