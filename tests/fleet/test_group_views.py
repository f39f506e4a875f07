"""The groups page against the simulator: list, search, sort, create, rename, delete, batch delete, sync."""

from __future__ import annotations

import uuid

import pytest

from fleet.mirror import sync
from fleet.models import ApiCall, CallState, Group, Priority, SyncRun
from fleet.pipeline import dispatch
from tests.support.once import key_from, key_in

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "groups-list"}


@pytest.fixture
def synced(sim_account):  # type: ignore[no-untyped-def]
    sync.start_sync(sim_account)
    dispatch.pump(sim_account.pk, wait=False)
    ApiCall.objects.all().delete()
    return sim_account


def _group(account, name: str = "North", **kwargs) -> Group:  # type: ignore[no-untyped-def]
    return Group.objects.create(account=account, remote_id=str(uuid.uuid4().int)[:19], name=name, **kwargs)


def _cloud_names(simulator) -> set[str]:  # type: ignore[no-untyped-def]
    return {g.name for g in simulator.sim.tenants[simulator.token].groups.values()}


def test_it_lists_the_groups(operator_client, synced):
    response = operator_client.get("/groups/")
    assert response.status_code == 200
    for group in Group.objects.filter(account=synced):
        assert group.name.encode() in response.content
    assert b"Sync now" in response.content and b"Create group" in response.content


def test_it_shows_an_empty_state_without_account(operator_client):
    response = operator_client.get("/groups/")
    assert response.status_code == 200 and b"No SolaX account yet" in response.content


def test_it_searches_sorts_and_pages(operator_client, account):
    for i in range(60):
        _group(account, f"Site {i:02d}", device_count=i)
    _group(account, "Gone", removed=True)
    response = operator_client.get("/groups/?q=site 1")
    names = [g.name for g, _ in response.context["rows"]]
    assert names == [f"Site 1{i}" for i in range(10)]
    response = operator_client.get("/groups/?sort=-members")
    assert response.context["rows"][0][0].name == "Site 59"
    assert response.context["page"].paginator.count == 60
    response = operator_client.get("/groups/?page=2", **HX)
    assert b"<html" not in response.content  # only the list partial
    assert b"Site 50" in response.content and b"Site 49" not in response.content
    removed = operator_client.get("/groups/?removed=1")
    assert [g.name for g, _ in removed.context["rows"]] == ["Gone"]
    assert operator_client.get("/groups/?sort=evil&page=x").status_code == 200


@pytest.mark.parametrize("groups", [3, 120])
def test_the_list_costs_the_same_queries_whatever_the_fleet(operator_client, account, groups,
                                                            django_assert_num_queries):
    for i in range(groups):
        _group(account, f"G{i:03d}", device_count=i)
    operator_client.get("/groups/")  # warm the session
    # 8 + the open one-time key of the create form, reused + the sync's call estimate
    with django_assert_num_queries(10):
        assert operator_client.get("/groups/?page=2&sort=-members").status_code == 200


def test_it_creates_a_group_through_the_cloud(operator_client, sim_account, simulator):
    key = key_from(operator_client, "/groups/")
    response = operator_client.post("/groups/new/", {"account": str(sim_account.code), "name": " Pilot East ",
                                                     "once": key}, **HX)
    assert response.status_code == 200
    call = ApiCall.objects.get()
    assert (call.endpoint, call.params, call.priority) == ("group_add", {"name": "Pilot East"}, Priority.MANAGEMENT)
    assert not Group.objects.exists()  # only when the cloud confirms
    assert b"pending" in response.content and b"create group Pilot East" in response.content
    assert b'hx-trigger="every 2s"' in response.content
    dispatch.pump(sim_account.pk, wait=False)
    group = Group.objects.get()
    assert group.name == "Pilot East" and group.remote_id in simulator.sim.tenants[simulator.token].groups
    response = operator_client.get("/groups/", **HX)
    assert b"Pilot East" in response.content and b'hx-trigger="every 2s"' not in response.content


def test_a_plain_post_redirects(operator_client, sim_account):
    response = operator_client.post("/groups/new/", {"account": str(sim_account.code), "name": "West",
                                                     "once": key_from(operator_client, "/groups/")})
    assert response.status_code == 302 and response["Location"].startswith("/groups/?account=")


@pytest.mark.parametrize("name,message", [
    ("", b"A group needs a name."),
    ("   ", b"A group needs a name."),
    ("x" * 51, b"at most 50 characters"),
    ("North", b"exists already"),
])
def test_bad_names_are_form_errors_and_nothing_is_sent(operator_client, sim_account, name, message):
    _group(sim_account, "North")
    response = operator_client.post("/groups/new/", {"account": str(sim_account.code), "name": name})
    assert response.status_code == 400 and message in response.content
    response = operator_client.post("/groups/new/", {"account": str(sim_account.code), "name": name}, **HX)
    assert response.status_code == 200 and message in response.content
    assert not ApiCall.objects.exists()


def test_the_vendor_error_shows_beside_the_change(operator_client, sim_account, simulator):
    existing = next(iter(_cloud_names(simulator)))  # in the cloud, not yet in the mirror
    operator_client.post("/groups/new/", {"account": str(sim_account.code), "name": existing,
                                          "once": key_from(operator_client, "/groups/")}, **HX)
    dispatch.pump(sim_account.pk, wait=False)
    assert ApiCall.objects.get().state == CallState.FAILED
    response = operator_client.get("/groups/")
    assert b"The group name already exists" in response.content and b"refused" in response.content
    assert not Group.objects.exists()


def test_it_renames_a_group(operator_client, synced, simulator):
    group = Group.objects.filter(account=synced).first()
    response = operator_client.post(f"/groups/{group.code}/rename/", {"name": "Renamed"}, **HX)
    assert response.status_code == 200
    group.refresh_from_db()
    assert group.name != "Renamed"
    assert f"pending: rename group {group.name} to Renamed".encode() in response.content
    # the form swaps itself; the list after a write goes where the list is
    assert response["HX-Retarget"] == "#groups-list" and response["HX-Reswap"] == "innerHTML"
    dispatch.pump(synced.pk, wait=False)
    group.refresh_from_db()
    assert group.name == "Renamed" and "Renamed" in _cloud_names(simulator)


def test_a_bad_rename_is_an_error_beside_the_form(operator_client, synced):
    first, second = Group.objects.filter(account=synced)[:2]
    response = operator_client.post(f"/groups/{first.code}/rename/", {"name": second.name}, **HX)
    assert response.status_code == 200 and b"exists already" in response.content
    # only the row's form comes back (swapped in place of itself): the list stays
    body = response.content.decode()
    assert "HX-Retarget" not in response and "<table" not in body and body.lstrip().startswith("<form")
    assert 'hx-target="this" hx-swap="outerHTML"' in body
    response = operator_client.post(f"/groups/{first.code}/rename/", {"name": ""})
    assert response.status_code == 400
    assert not ApiCall.objects.exists()


def test_it_deletes_a_group_after_confirmation(operator_client, synced, simulator):
    group = Group.objects.filter(account=synced).first()
    confirm = operator_client.get(f"/groups/{group.code}/delete/", HTTP_HX_REQUEST="true")
    assert b"Delete 1 group in SolaX Cloud?" in confirm.content and not ApiCall.objects.exists()
    operator_client.post(f"/groups/{group.code}/delete/", {"once": key_in(confirm)}, **HX)
    assert ApiCall.objects.get().endpoint == "group_delete"
    dispatch.pump(synced.pk, wait=False)
    group.refresh_from_db()
    assert group.removed and group.remote_id not in simulator.sim.tenants[simulator.token].groups
    assert not group.members.filter(removed=False).exists()


def test_it_batch_deletes_after_confirmation(operator_client, synced, simulator):
    chosen = list(Group.objects.filter(account=synced)[:2])
    data = {"account": str(synced.code), "codes": [str(g.code) for g in chosen]}
    confirm = operator_client.post("/groups/delete/", data, HTTP_HX_REQUEST="true")
    assert b"Delete 2 groups" in confirm.content and not ApiCall.objects.exists()
    operator_client.post("/groups/delete/", {**data, "confirm": "1", "once": key_in(confirm)}, **HX)
    call = ApiCall.objects.get()
    assert call.endpoint == "group_delete_batch"
    assert call.params == {"ids": ",".join(g.remote_id for g in chosen)}
    dispatch.pump(synced.pk, wait=False)
    assert Group.objects.filter(removed=True).count() == 2
    assert len(simulator.sim.tenants[simulator.token].groups) == 1


def test_batch_delete_needs_a_selection_of_your_own(operator_client, synced, other_account):
    theirs = _group(other_account, "Theirs")
    response = operator_client.post("/groups/delete/", {"account": str(synced.code)}, **HX)
    assert b"Tick at least one row." in response.content
    response = operator_client.post("/groups/delete/", {"account": str(synced.code), "codes": [str(theirs.code)],
                                                        "confirm": "1"})
    assert response.status_code == 400 and b"not yours" in response.content
    response = operator_client.post("/groups/delete/", {"account": str(synced.code), "codes": ["nope"]})
    assert response.status_code == 404
    assert not ApiCall.objects.exists()


def test_viewers_cannot_write(viewer_client, synced):
    group = Group.objects.filter(account=synced).first()
    assert viewer_client.get("/groups/").status_code == 200
    assert b"Create group" not in viewer_client.get("/groups/").content
    for url in ("/groups/new/", f"/groups/{group.code}/rename/", f"/groups/{group.code}/delete/",
                "/groups/delete/", "/sync/", "/groups/search/"):
        assert viewer_client.post(url, {"name": "x", "account": str(synced.code)}).status_code == 403, url
    assert viewer_client.get(f"/groups/{group.code}/delete/").status_code == 403
    assert not ApiCall.objects.exists()


def test_other_organizations_are_hidden(operator_client, account, other_account):
    theirs = _group(other_account, "Theirs")
    for url in (f"/groups/{theirs.code}/", f"/groups/{theirs.code}/members.csv"):
        assert operator_client.get(url).status_code == 404
    for url in (f"/groups/{theirs.code}/rename/", f"/groups/{theirs.code}/delete/"):
        assert operator_client.post(url, {"name": "Mine"}).status_code == 404
    assert operator_client.get(f"/groups/?account={other_account.code}").status_code == 404
    assert operator_client.post("/groups/new/", {"account": str(other_account.code), "name": "x"}).status_code == 404
    assert b"Theirs" not in operator_client.get("/groups/").content
    assert not ApiCall.objects.exists()


def test_wrong_methods_answer_405(operator_client, account):
    group = _group(account)
    for url in ("/groups/new/", f"/groups/{group.code}/rename/", "/groups/delete/", "/sync/", "/groups/search/"):
        assert operator_client.get(url).status_code == 405, url
    assert operator_client.post("/groups/").status_code == 405
    assert operator_client.post("/groups/export.csv").status_code == 405


def test_sync_now_shows_progress(operator_client, sim_account):
    response = operator_client.post("/sync/", {"account": str(sim_account.code)}, HTTP_HX_REQUEST="true")
    run = SyncRun.objects.get()
    assert f"/sync/{run.code}/".encode() in response.content and b"<progress" in response.content
    dispatch.pump(sim_account.pk, wait=False)
    response = operator_client.get(f"/sync/{run.code}/", HTTP_HX_REQUEST="true")
    assert response.status_code == 286  # done: stop polling
    assert b"4 of 4 pages" in response.content and b"done" in response.content


def test_the_cloud_search_waits_for_its_answer(operator_client, synced, simulator):
    name = next(iter(_cloud_names(simulator)))
    response = operator_client.post("/groups/search/", {"account": str(synced.code), "q": name[:3]})
    call = ApiCall.objects.get()
    assert call.endpoint == "group_fuzzy_query" and call.priority == Priority.POLL
    page = operator_client.get(response["Location"])
    assert b"waiting for SolaX" in page.content
    dispatch.pump(synced.pk, wait=False)
    result = operator_client.get(f"/cloud-search/{call.code}/", HTTP_HX_REQUEST="true")
    assert result.status_code == 286 and name.encode() in result.content
    assert operator_client.post("/groups/search/", {"account": str(synced.code), "q": ""}).status_code == 400


def test_it_exports_groups_as_csv(operator_client, synced):
    response = operator_client.get("/groups/export.csv")
    body = b"".join(response.streaming_content).decode()
    lines = body.strip().splitlines()
    assert lines[0].startswith("name,group id,members")
    assert len(lines) == 1 + Group.objects.filter(account=synced).count()


def test_the_page_links_keep_a_search_with_ampersands_intact(operator_client, synced):
    from fleet.models import Group

    Group.objects.filter(pk=Group.objects.filter(account=synced).first().pk).update(name="R&D #west")
    body = operator_client.get(f"/groups/?account={synced.code}&q=R%26D+%23west").content.decode()
    assert "R&amp;D #west" in body
    assert "q=R%26D+%23west&amp;sort=" in body
