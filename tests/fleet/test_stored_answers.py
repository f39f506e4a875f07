"""Answers that a page reads again after the call finished (writes.STORED_ANSWERS): the cloud's searches.

The ledger keeps a bounded copy of each body (RESPONSE_LIMIT); a search that finds a group's 45 members
answers more than that, and re-reading the copy failed with ResponseParseError on every poll (HTTP 500,
"waiting for SolaX" forever). Each kind is read again here, through the page that shows it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fleet.mirror import writes
from fleet.models import ApiCall, CallState, Group, SolaxAccount
from fleet.models.calls import RESPONSE_LIMIT
from fleet.pipeline import dispatch
from solax.simulator.testing import SimulatorHandle, running_simulator
from tests.conftest import FAST_SIM

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def demo_cloud() -> Iterator[SimulatorHandle]:
    with running_simulator(fleet="demo", seed=5, per_minute=1000, **FAST_SIM) as handle:
        yield handle


@pytest.fixture
def demo_account(org, demo_cloud):  # type: ignore[no-untyped-def]
    account = SolaxAccount(organization=org, name="Demo", vpp_base_url=demo_cloud.vpp_base_url,
                           ev_base_url=demo_cloud.ev_base_url, calls_per_minute=1000)
    account.set_token(demo_cloud.token)
    account.save()
    return account


def _search(kind: str, account: SolaxAccount, demo_cloud: SimulatorHandle) -> tuple[ApiCall, int]:
    """Queue a search of `kind` that finds a lot; return the call and how many the cloud has."""
    tenant = demo_cloud.sim.tenant()
    if kind == "group_fuzzy_query":
        with tenant.lock:  # names long enough that the answer outgrows the ledger's copy
            for i in range(40):
                tenant.group_add(f"Searchable site with a long name {i:03d}")
        return writes.request_group_search(account, "Searchable"), 40
    remote = max(tenant.groups.values(), key=lambda g: len(g.members))
    group = Group.objects.create(account=account, remote_id=remote.id, name=remote.name,
                                 device_count=len(remote.members))
    return writes.request_member_search(group, "SW", None), len(remote.members)


@pytest.mark.parametrize("kind", sorted(writes.STORED_ANSWERS))
def test_every_stored_answer_kind_is_read_again(kind, demo_account, demo_cloud, viewer_client):
    call, expected = _search(kind, demo_account, demo_cloud)
    dispatch.pump(demo_account.pk, wait=False)
    call = ApiCall.objects.get(pk=call.pk)
    assert call.state == CallState.SUCCEEDED
    assert len(call.response) == RESPONSE_LIMIT  # the ledger's copy is cut: it cannot be parsed again
    items = writes.search_result(call)
    assert items is not None and len(items) == expected
    assert all(isinstance(item, writes.STORED_ANSWERS[kind]) for item in items)
    assert all(isinstance(item.id, str) for item in items)
    assert call not in writes.changes_for(demo_account, "group").calls  # a search is not a pending change
    page = viewer_client.get(f"/cloud-search/{call.code}/", HTTP_HX_REQUEST="true")
    assert page.status_code == 286  # answered: the page stops polling
    assert f"{expected} found".encode() in page.content


def test_an_unreadable_old_answer_shows_as_nothing_found_not_an_error(demo_account, viewer_client):
    call = ApiCall.objects.create(account=demo_account, endpoint="inverter_fuzzy_query", params={}, priority=2,
                                  state=CallState.SUCCEEDED, response='{"success":true,"result":{"num":3,"li')
    assert writes.search_result(call) == []
    assert viewer_client.get(f"/cloud-search/{call.code}/").status_code == 200


def test_another_organization_cannot_read_a_search(demo_account, demo_cloud, other_org):
    from tests.conftest import _client_for, make_member

    call, _ = _search("inverter_fuzzy_query", demo_account, demo_cloud)
    stranger = _client_for(make_member(other_org, "stan", "admin"))
    assert stranger.get(f"/cloud-search/{call.code}/").status_code == 404
