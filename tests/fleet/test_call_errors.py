"""Call errors in an operator's words, the raw text in a <details> (solax.errors.in_operator_words and
the |call_error filter), on the pages that show call errors."""

from __future__ import annotations

import pytest
from django.template import Context, Template

from fleet.models import ApiCall, CallState, Group
from fleet.pipeline import dispatch, handlers, queue
from solax import endpoints
from solax.errors import AuthError, HTTPStatusError, NotSentError, SolaxTimeout, TransportError, in_operator_words

pytestmark = pytest.mark.django_db

NO_AUTH = "SolaX does not know this serial number or it belongs to another account"
TIMEOUT = "SolaX did not answer in time; delivery unknown"


def _stored(error) -> str:  # type: ignore[no-untyped-def]
    """The text the pipeline stores for `error` (fleet/pipeline/handlers.py)."""
    return handlers.error_fields(error)["error"]


@pytest.mark.parametrize("error,words", [
    (AuthError("no auth!", code=1003, endpoint="inverter_add"), NO_AUTH),
    (SolaxTimeout("no answer within the read timeout after sending", endpoint="group_add"), TIMEOUT),
    (TransportError("connection reset", endpoint="group_add"), "delivery unknown"),
    (NotSentError("not sent", endpoint="group_add"), "nothing was sent"),
    (HTTPStatusError("HTTP 503", status=503, endpoint="group_add"), "SolaX answered HTTP 503"),
])
def test_known_failures_read_in_an_operators_words(error, words) -> None:  # type: ignore[no-untyped-def]
    assert words in (in_operator_words(_stored(error)) or "")


def test_the_vendors_bare_text_is_recognised_too() -> None:
    assert in_operator_words("no auth!") == NO_AUTH
    assert in_operator_words("something SolaX never said") is None


def test_the_filter_folds_the_raw_text_and_escapes_it() -> None:
    html = Template("{{ e|call_error }}").render(Context({"e": "AuthError: x: no auth! <b>(code=1003)</b>"}))
    assert f'<span class="error">{NO_AUTH}</span>' in html
    assert "<details" in html and "&lt;b&gt;(code=1003)&lt;/b&gt;" in html and "<b>" not in html
    unknown = Template("{{ e|call_error }}").render(Context({"e": "<i>odd</i>"}))
    assert unknown == '<span class="error">&lt;i&gt;odd&lt;/i&gt;</span>'
    empty = Template('{{ e|call_error:"no answer" }}').render(Context({"e": ""}))
    assert empty == '<span class="error">no answer</span>'


def test_the_budget_page_shows_a_timeout_in_words_and_the_raw_text(operator_client, sim_account, simulator,
                                                                      settings) -> None:
    settings.SOLAX_READ_TIMEOUT = 1
    simulator.configure(faults=[{"kind": "timeout", "seconds": 2, "count": 1}])
    call = queue.enqueue(sim_account, "group_add", {"name": "Late"}, purpose="create group")
    dispatch.pump(sim_account.pk, wait=False)
    call.refresh_from_db()
    assert call.state == CallState.UNKNOWN
    page = operator_client.get(f"/budget/?account={sim_account.code}").content.decode()
    assert TIMEOUT in page
    assert f"<summary>Details</summary><code>{call.error}</code>" in page.replace("&#x27;", "'")


def test_a_refused_member_add_shows_the_vendor_words_in_the_call_log(operator_client, sim_account, simulator,
                                                                 mirrored_fleet) -> None:
    group = Group.objects.filter(account=sim_account).first()
    assert group is not None
    unbound = next(inv.sn for inv in simulator.sim.tenant().inverters.values() if not inv.bound)
    queue.enqueue(sim_account, "inverter_add", endpoints.inverter_add_params(group.remote_id, unbound),
                  purpose=f"add {unbound}", context={"group": group.pk})
    dispatch.pump(sim_account.pk, wait=False)
    assert ApiCall.objects.get(endpoint="inverter_add").state == CallState.FAILED
    page = operator_client.get(f"/budget/?account={sim_account.code}").content.decode()
    assert NO_AUTH in page and "no auth!" in page


def test_a_succeeded_calls_vendor_text_is_not_shown_as_an_error(operator_client, sim_account, simulator) -> None:
    call = queue.enqueue(sim_account, "group_query", {"current": 1, "size": 10}, purpose="read groups")
    dispatch.pump(sim_account.pk, wait=False)
    call.refresh_from_db()
    assert call.state == CallState.SUCCEEDED
    ApiCall.objects.filter(pk=call.pk).update(error="query success")  # the cloud's `exception` on success
    page = operator_client.get(f"/budget/?account={sim_account.code}").content.decode()
    assert '<span class="error">query success</span>' not in page
